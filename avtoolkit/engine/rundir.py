"""The run directory: its name, the text log, result files and PNG curves.

Layout::

    runs/<recipe-name>-<YYYYmmdd-HHMMSS>/
        recipe.yaml           resolved recipe (base merged, overrides applied, sizes injected)
        checkpoints/last.ckpt checkpoints/best.ckpt
        metrics.csv           one row per epoch
        results.json          test metrics of best.ckpt
        training.log          everything printed, plus warnings
        tensorboard/          TensorBoard event files
        curves.png            training and validation curves
        .avtoolkit-run.json   manifest: marks a folder a run wrote (and the sha256 of its recipe.yaml)

``--overwrite`` deletes only these names, and refuses a folder holding anything else.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from avtoolkit.atomic import TEMP_SUFFIX, atomic_write, stale_temporaries, temp_prefix
from avtoolkit.engine.runlock import LOCK_NAME
from avtoolkit.errors import RunDirectoryError, UsageError

#: set by rank 0 so processes Lightning launches for DDP use the same run directory.
RUN_DIR_ENV = "AVTOOLKIT_RUN_DIR"


def world_size_from_env() -> int:
    """Processes in the job according to torchrun / SLURM variables (1 when not launched)."""
    for key in ("WORLD_SIZE", "SLURM_NTASKS"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 1


def resolve_run_dir(name: str, run_dir: str | os.PathLike[str] | None, root: str | os.PathLike[str] = "runs") -> Path:
    """The run directory: ``run_dir`` if given, the launcher's, or ``runs/<name>-<timestamp>``.

    Raises:
        UsageError: several processes were launched externally (torchrun, SLURM) without
            ``--run-dir``: their timestamps could differ, so they must be told one folder.
    """
    if run_dir is not None:
        return Path(run_dir)
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited:
        return Path(inherited)
    if world_size_from_env() > 1:
        raise UsageError("this run has several processes (torchrun or SLURM): pass the same --run-dir to all "
                         "of them (e.g. --run-dir runs/$SLURM_JOB_ID)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}-{stamp}"
    n = 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = Path(root) / f"{name}-{stamp}-{n}"
    return path


#: the file a run writes first, naming itself and the sha256 of the ``recipe.yaml`` it wrote:
#: ``--overwrite`` deletes only a folder that has it, and only the entries of :data:`RUN_ENTRIES`.
MANIFEST_NAME = ".avtoolkit-run.json"
#: what ``avtoolkit run`` writes at the top of its directory (folders: everything under them).
RUN_ENTRIES = frozenset({"recipe.yaml", "checkpoints", "metrics.csv", "results.json", "training.log", "tensorboard",
                         "wandb", "curves.png", MANIFEST_NAME, LOCK_NAME})
#: what a run writes in ``checkpoints/`` (besides the temporaries of these names).
CHECKPOINT_ENTRIES = frozenset({"last.ckpt", "best.ckpt"})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_temp_of(name: str, targets: frozenset[str] | set[str]) -> bool:
    """Whether ``name`` is an :func:`atomic_write` temporary of one of ``targets``."""
    return name.endswith(TEMP_SUFFIX) and any(name.startswith(temp_prefix(t)) for t in targets)


def foreign_entries(out: Path) -> list[str]:
    """What in run directory ``out`` a run did not write (relative paths, sorted).

    The recipe counts as the run's only while it is byte for byte the one the manifest names.
    """
    found = []
    for p in sorted(out.iterdir()):
        if p.name not in RUN_ENTRIES and not _is_temp_of(p.name, RUN_ENTRIES):
            found.append(p.name + ("/" if p.is_dir() else ""))
    ckpts = out / "checkpoints"
    if ckpts.is_dir() and not ckpts.is_symlink():
        found += [f"checkpoints/{p.name}" for p in sorted(ckpts.iterdir())
                  if p.name not in CHECKPOINT_ENTRIES and not _is_temp_of(p.name, CHECKPOINT_ENTRIES)]
    elif ckpts.exists():
        found.append("checkpoints")
    manifest = _read_manifest(out)
    recipe = out / "recipe.yaml"
    if manifest is not None and recipe.exists() and (not recipe.is_file() or recipe.is_symlink()
                                                     or manifest.get("recipe_sha256") != _sha256(recipe)):
        found.append("recipe.yaml (not the one the run wrote)")
    return sorted(found)


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("written_by") == "avtoolkit run" else None


def write_manifest(out: Path, recipe_text: str) -> None:
    """Marks ``out`` as a run directory: the manifest first, then the resolved recipe it names."""
    digest = hashlib.sha256(recipe_text.encode("utf-8")).hexdigest()
    with atomic_write(out / MANIFEST_NAME, "w") as fh:
        fh.write(json.dumps({"written_by": "avtoolkit run", "recipe_sha256": digest,
                             "entries": sorted(RUN_ENTRIES)}, indent=2) + "\n")
    with atomic_write(out / "recipe.yaml", "w") as fh:
        fh.write(recipe_text)


def check_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuses to write a new run into a directory that holds something, unless told to.

    ``overwrite`` is allowed only for a folder a run wrote (it holds :data:`MANIFEST_NAME`) that
    holds nothing but what a run writes (:func:`foreign_entries` is empty).

    Raises:
        RunDirectoryError: ``out`` is not empty and neither ``resume`` nor ``overwrite``, or
            ``overwrite`` is asked of a directory that is not a run directory or holds other files.
    """
    if resume or not out.is_dir():
        return
    contents = [p for p in out.iterdir() if p.name != LOCK_NAME]
    if not contents:
        return
    if not overwrite:
        raise RunDirectoryError(
            f"run directory {out} is not empty (it holds {', '.join(sorted(p.name for p in contents)[:4])}); "
            "use --resume to continue that run, --overwrite to delete it and start again, or another --run-dir")
    if _read_manifest(out) is None:
        names = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in contents)[:6])
        raise RunDirectoryError(f"--overwrite {out}: it is not a run directory (no {MANIFEST_NAME}, which "
                                f"avtoolkit run writes; it holds {names}); refusing to delete it, choose another "
                                "--run-dir")
    foreign = foreign_entries(out)
    if foreign:
        raise RunDirectoryError(f"--overwrite {out}: it holds files no run wrote ({', '.join(foreign[:8])}"
                                f"{', ...' if len(foreign) > 8 else ''}); move them out or choose another --run-dir "
                                "(--overwrite deletes only a run's own files)")


def clear_run_dir(out: Path) -> None:
    """Deletes an overwritten run's files, only the names of :data:`RUN_ENTRIES` (the lock stays: we hold it).

    Callers check :func:`foreign_entries` first (:func:`check_run_dir` under the lock).
    """
    for p in out.iterdir():
        if p.name == LOCK_NAME or not (p.name in RUN_ENTRIES or _is_temp_of(p.name, RUN_ENTRIES)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Deletes what :func:`atomic_write` left in ``out`` and ``out/checkpoints`` when a process was killed
    mid-write (call it holding the run's lock: no live writer can own them). Returns what was removed."""
    removed = []
    for folder, names in ((out, RUN_ENTRIES), (out / "checkpoints", CHECKPOINT_ENTRIES)):
        for p in stale_temporaries(folder):
            if _is_temp_of(p.name, names):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def truncate_metrics(metrics_csv: Path, epochs: int) -> int:
    """Keeps the rows of ``metrics.csv`` for epochs ``1..epochs`` (the ones a resumed checkpoint holds).

    A run killed after writing an epoch's row but before its checkpoint re-runs that epoch on
    ``--resume``; without this the file would hold two rows for it. Rewritten atomically.
    Returns the number of rows dropped.
    """
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)

    def keep(row: dict[str, str]) -> bool:
        try:
            return int(float(row.get("epoch") or 0)) <= epochs
        except ValueError:
            return True

    kept = [r for r in rows if keep(r)]
    if len(kept) == len(rows):
        return 0
    with atomic_write(metrics_csv, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(kept)
    return len(rows) - len(kept)


class _ConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("avtoolkit.runlog")


@contextlib.contextmanager
def run_logging(log_file: Path | None) -> Iterator[None]:
    """Sends avtoolkit's and Lightning's log records to ``training.log`` (and avtoolkit's to the console)."""
    handlers: list[tuple[logging.Logger, logging.Handler]] = []
    pkg = logging.getLogger("avtoolkit")
    old_level = pkg.level
    pkg.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(_ConsoleFilter())
    handlers.append((pkg, console))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers += [(pkg, fh), (logging.getLogger("lightning.pytorch"), fh), (logging.getLogger("py.warnings"), fh)]
    for logger, handler in handlers:
        logger.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger, handler in handlers:
            logger.removeHandler(handler)
            if isinstance(handler, logging.FileHandler):
                handler.close()
        pkg.setLevel(old_level)


def write_results(path: Path, metrics: dict[str, float], extra: dict[str, Any]) -> None:
    """Writes ``results.json``: the test metrics and where they came from."""
    payload = {"metrics": {k: float(v) for k, v in sorted(metrics.items())}, **extra}
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(payload, indent=2) + "\n")


def results_table(metrics: dict[str, float], title: str) -> str:
    """A two-column text table of metrics.

    Examples:
        >>> print(results_table({"test/acc": 0.5, "test/loss": 1.25}, "results"))
        results
        -------------------------
        test/acc           0.5000
        test/loss          1.2500
        -------------------------
    """
    width = max([len(k) for k in metrics] + [8]) + 4
    rule = "-" * (width + 12)
    rows = [f"{k:<{width}}{v:>12.4f}" if math.isfinite(v) else f"{k:<{width}}{v!s:>12}" for k, v in sorted(metrics.items())]
    return "\n".join([title, rule, *rows, rule])


def plot_curves(metrics_csv: Path, out: Path) -> Path | None:
    """Plots per-epoch losses and validation metrics from ``metrics.csv`` into one PNG.

    Returns:
        ``out``, or ``None`` when there is nothing to plot yet.
    """
    if not metrics_csv.is_file():
        return None
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    def series(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for r in rows:
            if r.get(key) not in (None, ""):
                xs.append(float(r["epoch"]))
                ys.append(float(r[key]))
        return xs, ys

    keys = list(rows[0].keys())
    for r in rows:
        keys += [k for k in r if k not in keys]
    loss_keys = [k for k in keys if k.endswith("/loss")]
    metric_keys = [k for k in keys if k.startswith("val/") and not k.endswith("/loss")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, group, title in ((axes[0], loss_keys, "loss"), (axes[1], metric_keys, "validation metrics")):
        for key in group:
            xs, ys = series(key)
            if xs:
                ax.plot(xs, ys, marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if group:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
