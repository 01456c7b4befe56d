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
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from avtoolkit.atomic import atomic_write
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


def check_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuses to write a new run into a directory that holds something, unless told to.

    Raises:
        RunDirectoryError: ``out`` is not empty and neither ``resume`` nor ``overwrite``, or
            ``overwrite`` is asked of a directory that is not a run directory.
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
    if not ((out / "recipe.yaml").is_file() or (out / "checkpoints").is_dir()):
        raise RunDirectoryError(f"--overwrite {out}: it is not a run directory (no recipe.yaml or checkpoints/); "
                                "refusing to delete it, choose another --run-dir")


def clear_run_dir(out: Path) -> None:
    """Deletes an overwritten run's files (the lock file stays: we hold it)."""
    for p in out.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


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
