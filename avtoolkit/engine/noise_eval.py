"""``noise_eval``: WER and CER of a CTC checkpoint against SNR, per noise, input combination and decoder.

Every figure is :func:`avtoolkit.engine.evaluate.evaluate` on the recipe's test split with
three dataset settings changed: ``data.modalities`` (the inputs fed to the model),
``data.test_noise_snr_db`` (noise added to the test audio, the same noise every run) and
``data.noise_type`` (``white``, or ``babble`` summed from other test utterances). Clean
audio is evaluated once per input combination and shared by every noise type; video-only
does not hear the audio, so it is evaluated once and repeated across noises and SNRs.
``avtoolkit noise-eval`` and the demo job (``avtoolkit demo``) both run this.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from avtoolkit.errors import UsageError
from avtoolkit.quiet import quieter

#: input combinations by name, in the order tables and plots show them.
INPUTS: dict[str, tuple[str, ...]] = {"audio-only": ("audio",), "video-only": ("video",),
                                      "audio-visual": ("audio", "video")}
#: SNRs in dB of ``avtoolkit noise-eval``; ``None`` is clean audio.
SNRS: tuple[float | None, ...] = (None, 10.0, 5.0, 0.0, -5.0, -10.0)
#: noise types of ``avtoolkit noise-eval`` (the manifest dataset's ``noise_type`` values).
NOISES: tuple[str, ...] = ("babble", "white")


def inputs_name(modalities: Iterable[str]) -> str:
    """The table name of an input combination, from its modalities in any order or ``audio+video`` form.

    Raises:
        UsageError: a modality other than ``audio`` and ``video``, or none.

    Examples:
        >>> inputs_name(["video", "audio"]), inputs_name("audio+video".split("+")), inputs_name(["video"])
        ('audio-visual', 'audio-visual', 'video-only')
    """
    given = {m.strip() for m in modalities if m.strip()}
    for name, mods in INPUTS.items():
        if given == set(mods):
            return name
    raise UsageError(f"--modalities: {'+'.join(sorted(given)) or 'nothing'} is not an input combination; "
                     "use audio, video or audio+video")


def snr_label(snr: float | None) -> str:
    """``clean`` or the SNR in dB as a short number (the keys of tables and JSON).

    Examples:
        >>> snr_label(None), snr_label(10.0), snr_label(-5)
        ('clean', '10', '-5')
    """
    return "clean" if snr is None else f"{snr:g}"


def parse_snr(text: str) -> float | None:
    """``clean`` -> ``None``, else the SNR in dB.

    Raises:
        UsageError: neither ``clean`` nor a finite number.

    Examples:
        >>> parse_snr("clean"), parse_snr("-5")
        (None, -5.0)
    """
    if text.strip().lower() == "clean":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"--snr: {text!r} is neither 'clean' nor a number of dB")
    return value


def _quoted(text: str) -> str:
    """A YAML single-quoted string, so an override value that is a path stays a string."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class NoiseEvalResult:
    """The figures of one :func:`noise_eval` run.

    Attributes:
        checkpoint: the checkpoint evaluated.
        recipe: the recipe's name.
        decoders: decoder labels (``greedy``, ``beam 10 + lexicon grid (51 words)``, ...).
        noises: noise types.
        snrs: SNR labels (``clean``, ``10``, ...).
        inputs: input combination names (``audio-only``, ``video-only``, ``audio-visual``).
        rows: one ``{decoder, noise, inputs, snr, wer, cer}`` per combination (every decoder x
            noise x inputs x SNR), WER and CER as fractions.
        evaluations: test-split passes actually run (clean and video-only ones are shared).
        seconds: wall time of the whole run.
    """

    checkpoint: str
    recipe: str
    decoders: list[str]
    noises: list[str]
    snrs: list[str]
    inputs: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0

    def curves(self, noise: str, decoder: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
        """``{inputs: {snr label: {"wer", "cer"}}}`` for one noise type and decoder (default: the first)."""
        decoder = self.decoders[0] if decoder is None else decoder
        out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in self.inputs}
        for r in self.rows:
            if r["noise"] == noise and r["decoder"] == decoder:
                out[r["inputs"]][r["snr"]] = {"wer": r["wer"], "cer": r["cer"]}
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain types, as written to ``noise_eval.json``."""
        return {"checkpoint": self.checkpoint, "recipe": self.recipe, "split": "test", "decoders": self.decoders,
                "noises": self.noises, "snrs": self.snrs, "inputs": self.inputs, "rows": self.rows,
                "evaluations": self.evaluations, "seconds": self.seconds}

    def markdown(self) -> str:
        """One table per noise type: a row per decoder and input, a column per SNR, cells ``WER (CER)`` in %."""
        snr_heads = [s if s == "clean" else f"{s} dB" for s in self.snrs]
        parts = [f"# WER against SNR: `{self.recipe}`\n",
                 f"Checkpoint `{self.checkpoint}`, test split. Cells are WER % (CER %). Noise is added to the "
                 "test audio at each SNR, the same noise every run; video-only hears no audio, so its row "
                 f"is one evaluation repeated. {self.evaluations} evaluations in {self.seconds:.0f} s.\n"]
        for noise in self.noises:
            parts.append(f"\n## {noise} noise\n\n| decoder | input | {' | '.join(snr_heads)} |\n"
                         f"| --- | --- |{' ---: |' * len(self.snrs)}\n")
            for decoder in self.decoders:
                for name, rows in self.curves(noise, decoder).items():
                    cells = [f"{100 * rows[s]['wer']:.1f} ({100 * rows[s]['cer']:.1f})" for s in self.snrs]
                    parts.append(f"| {decoder} | {name} | {' | '.join(cells)} |\n")
        return "".join(parts)


@dataclass
class _Decoder:
    label: str
    overrides: list[str]


def _decoders(base: Any, overrides: list[str], decoders: Sequence[str] | None, beam_size: int | None,
              lexicon: Path | None, grammar: str | None = None) -> list[_Decoder]:
    from avtoolkit.recipe import load_recipe
    from avtoolkit.recipe.schema import DecodingConfig, section

    names: list[str | None] = list(dict.fromkeys(decoders)) if decoders else [None]  # None: the recipe's own
    out = []
    beams = 0
    for name in names:
        extra = [] if name is None else [f"decoding.name={name}"]
        cfg = section(DecodingConfig, load_recipe(base, [*overrides, *extra]).get("decoding"))
        if cfg.name in ("beam", "joint"):
            beams += 1
            extra += [f"decoding.beam_size={beam_size}"] if beam_size is not None else []
            extra += [f"decoding.lexicon={_quoted(str(lexicon))}"] if lexicon is not None else []
            cfg = section(DecodingConfig, load_recipe(base, [*overrides, *extra]).get("decoding"))
        out.append(_Decoder(_decoder_label(cfg), extra))
    if (lexicon is not None or beam_size is not None) and not beams and grammar is None:
        raise UsageError("--lexicon and --beam-size apply to beam search only; add --decoder beam")
    if grammar is not None:
        from avtoolkit.decoding.grammar import grammar_slots

        grammar_slots(grammar)  # a bad name fails here, before any evaluation
        # One more beam search, restricted to the grammar's sentences (its own lexicon).
        extra = ["decoding.name=beam", f"decoding.grammar={grammar}", "decoding.lexicon=null"]
        extra += [f"decoding.beam_size={beam_size}"] if beam_size is not None else []
        cfg = section(DecodingConfig, load_recipe(base, [*overrides, *extra]).get("decoding"))
        out.append(_Decoder(_decoder_label(cfg), extra))
    return out


def _decoder_label(cfg: Any) -> str:
    """``greedy``, ``beam 10``, ``beam 10 + lexicon grid (51 words)``, ``... + LM name``, ``joint 10 (ctc 0.3)``."""
    if cfg.name not in ("beam", "joint"):
        return str(cfg.name)
    label = f"beam {cfg.beam_size}" if cfg.name == "beam" else f"joint {cfg.beam_size} (ctc {cfg.ctc_weight:g})"
    if cfg.lexicon:
        path = Path(cfg.lexicon)
        words = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.is_file() else "?"
        label += f" + lexicon {path.stem.removesuffix('_lexicon')} ({words} words)"
    if cfg.grammar:
        from avtoolkit.decoding.grammar import grammar_words

        label += f" + grammar {cfg.grammar} ({len(grammar_words(cfg.grammar))} words)"
    if cfg.lm:
        lm = Path(cfg.lm)
        # a run's checkpoint is named by its run folder: every LM run has a best.ckpt
        label += f" + LM {lm.parent.parent.name}/{lm.name}" if lm.parent.name == "checkpoints" else f" + LM {lm.name}"
    return label


def noise_eval(checkpoint: str | os.PathLike[str], recipe: Any = None, overrides: list[str] | None = None,
               inputs: Sequence[str] | None = None, noises: Sequence[str] | None = None,
               snrs: Sequence[float | None] = SNRS, decoders: Sequence[str] | None = None,
               beam_size: int | None = None, lexicon: str | os.PathLike[str] | None = None,
               lexicon_dir: str | os.PathLike[str] | None = None, grammar: str | None = None,
               progress: bool = False) -> NoiseEvalResult:
    """Test WER and CER of one CTC checkpoint at every SNR, noise type, input combination and decoder.

    Args:
        checkpoint: a run's ``best.ckpt`` or ``last.ckpt`` of a CTC model.
        recipe: the recipe supplying data and decoding (a path, shipped name or mapping);
            ``None`` uses the one stored in the checkpoint.
        overrides: recipe overrides (manifest paths, ``data.root`` ...).
        inputs: input combinations by name (``audio-only``, ``video-only``, ``audio-visual``)
            or modalities (``audio``, ``video``, ``audio+video``); default: each of the model's
            inputs alone, then all together.
        noises: noise types (default :data:`NOISES`).
        snrs: SNRs in dB, ``None`` for clean.
        decoders: ``greedy`` and/or ``beam``; default the recipe's own decoder.
        beam_size: beam width for ``beam`` (default: the recipe's ``decoding.beam_size``).
        lexicon: a lexicon file, or a built-in list's name (``grid``), for ``beam``.
        lexicon_dir: where a built-in lexicon is written (default: a temporary folder).
        grammar: a built-in slot grammar (``grid``): adds one more beam search, restricted to
            the grammar's sentences (:mod:`avtoolkit.decoding.grammar`).
        progress: print one line per evaluation.

    Returns:
        The figures, with every decoder x noise x inputs x SNR row.

    Raises:
        UsageError: an empty list, an input the model does not have, ``lexicon`` without beam search.
        CheckpointError: not a CTC checkpoint, or one that does not fit its recipe.
        RecipeError: the recipe's dataset does not take ``modalities``, ``test_noise_snr_db``
            and ``noise_type`` (the manifest dataset does), or a bad override.
    """
    import tempfile

    from avtoolkit.models.checkpoint import load_model
    from avtoolkit.engine.evaluate import evaluate
    from avtoolkit.decoding.lexicon import lexicon_file
    from avtoolkit.recipe import RecipeError, load_recipe, validate_recipe

    started = time.perf_counter()
    loaded = load_model(checkpoint, command="noise-eval")
    base = loaded.recipe if recipe is None else recipe
    overrides = list(overrides or [])
    have = set(loaded.model.modalities)
    if inputs is None:
        names = [n for n, mods in INPUTS.items() if set(mods) <= have and (len(mods) == 1 or set(mods) == have)]
    else:
        names = list(dict.fromkeys(n if n in INPUTS else inputs_name(n.split("+")) for n in inputs))
    noises = list(dict.fromkeys(NOISES if noises is None else noises))
    snr_values = list(dict.fromkeys(snrs))
    for what, values in (("--modalities", names), ("--noise", noises), ("--snr", snr_values)):
        if not values:
            raise UsageError(f"{what}: give at least one value")
    missing = [n for n in names if not set(INPUTS[n]) <= have]
    if missing:
        raise UsageError(f"{checkpoint}: the model reads {'+'.join(sorted(have))}, so it cannot be tested "
                         f"{', '.join(missing)}")
    lex = None
    if lexicon is not None:
        lex = lexicon_file(lexicon, lexicon_dir or tempfile.mkdtemp(prefix="avtoolkit-lexicon-"), loaded.vocabulary)
    decs = _decoders(base, overrides, decoders, beam_size, lex, grammar)
    name = str(load_recipe(base, overrides).get("name") or Path(str(checkpoint)).stem)

    # One plan of every evaluation, checked before the first one runs: a bad noise name or a
    # dataset without these settings fails in seconds, not after an hour of clean results.
    plan: dict[tuple[str, str, str | None, float | None], list[str]] = {}
    for dec in decs:
        for n in names:
            hears = "audio" in INPUTS[n]
            for noise in noises:
                for snr in snr_values:
                    key = (dec.label, n, noise if hears and snr is not None else None, snr if hears else None)
                    extra = [f"data.modalities=[{', '.join(INPUTS[n])}]", "trainer.progress_bar=false"]
                    extra += [f"data.test_noise_snr_db={snr}", f"data.noise_type={noise}"] if key[3] is not None \
                        else ["data.test_noise_snr_db=null"]
                    plan[key] = [*overrides, *dec.overrides, *extra]
    for extra in {tuple(v) for v in plan.values()}:
        try:
            validate_recipe(load_recipe(base, list(extra)))
        except RecipeError as exc:
            exc.add_note("noise-eval sets data.modalities, data.test_noise_snr_db and data.noise_type: the "
                         "recipe's dataset must take them (the manifest dataset does)")
            raise

    result = NoiseEvalResult(checkpoint=str(checkpoint), recipe=name, decoders=[d.label for d in decs],
                             noises=noises, snrs=[snr_label(s) for s in snr_values], inputs=names)
    scores: dict[tuple[str, str, str | None, float | None], dict[str, float]] = {}
    for i, (key, extra) in enumerate(plan.items(), 1):
        # without Lightning's "GPU available: ..." lines, printed by every one of the many Trainers
        with quieter("lightning.pytorch.utilities.rank_zero", logging.WARNING):
            metrics = evaluate(base, checkpoint, "test", overrides=list(extra), loaded=loaded)
        scores[key] = {"wer": float(metrics["test/wer"]), "cer": float(metrics["test/cer"])}
        if progress:
            where = "clean" if key[3] is None and key[2] is None and "audio" in INPUTS[key[1]] else \
                ("no audio" if key[3] is None else f"{key[2]} {snr_label(key[3])} dB")
            print(f"[{i}/{len(plan)}] {key[0]}, {key[1]}, {where}: WER {100 * scores[key]['wer']:.1f}%  "
                  f"CER {100 * scores[key]['cer']:.1f}%", flush=True)
    for dec in decs:
        for noise in noises:
            for n in names:
                hears = "audio" in INPUTS[n]
                for snr in snr_values:
                    row = scores[(dec.label, n, noise if hears and snr is not None else None, snr if hears else None)]
                    result.rows.append({"decoder": dec.label, "noise": noise, "inputs": n, "snr": snr_label(snr), **row})
    result.evaluations = len(plan)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def plot_wer_vs_snr(result: NoiseEvalResult, out: str | os.PathLike[str], title: str | None = None) -> Path:
    """PNG of WER (%) against SNR: one panel per noise type, one line per input combination (and decoder).

    Args:
        result: what :func:`noise_eval` returned.
        out: the PNG file.
        title: the figure's title (default: the recipe's name).

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = title or f"{result.recipe}: WER against SNR"
    panels = len(result.noises)
    # rows of the legend below the panels: none when it fits inside the one panel
    legend_rows = 0 if panels == 1 and len(result.decoders) == 1 else \
        len(result.inputs) if panels == 1 else len(result.decoders)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4 + 0.3 * legend_rows), sharey=True, squeeze=False)
    styles = ["-", "--", ":", "-."]
    x = range(len(result.snrs))
    for ax, noise in zip(axes[0], result.noises):
        for d, decoder in enumerate(result.decoders):
            for (name, rows), marker in zip(result.curves(noise, decoder).items(), "osd"):
                label = name if len(result.decoders) == 1 else f"{name}, {decoder}"
                ax.plot(x, [100 * rows[s]["wer"] for s in result.snrs], marker=marker,
                        linestyle=styles[d % len(styles)], color=f"C{result.inputs.index(name)}", label=label)
        ax.set_xticks(list(x), [s if s == "clean" else f"{s} dB" for s in result.snrs])
        ax.set_xlabel(f"SNR of {noise} noise added to the test audio")
        ax.set_title(title if panels == 1 else f"{noise} noise")
        ax.set_ylim(bottom=0)  # WER from 0, so a flat line near 100% does not read as a trend
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("WER (%)")
    if panels > 1:
        fig.suptitle(title)
    if panels == 1 and len(result.decoders) == 1:
        axes[0][0].legend()
        fig.tight_layout()
    else:  # one legend for every panel, below them, so it hides no line
        handles, labels = axes[0][0].get_legend_handles_labels()
        n = len(result.inputs)
        if panels == 1:  # a column per decoder fits one panel's width
            order, columns = list(range(len(labels))), len(result.decoders)
        else:  # legends fill column by column: order by input, then decoder, for a row per decoder
            order, columns = sorted(range(len(labels)), key=lambda k: (k % n, k // n)), n
        fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="lower center", ncol=columns,
                   frameon=False)
        fig.tight_layout(rect=(0, 0.06 * legend_rows, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_noise_report(result: NoiseEvalResult, out_dir: str | os.PathLike[str],
                       title: str | None = None) -> dict[str, Path]:
    """Writes ``noise_eval.md`` (tables and the plot), ``noise_eval.json`` and ``wer_vs_snr.png`` into ``out_dir``.

    Returns:
        ``{"markdown", "json", "png"}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_wer_vs_snr(result, out / "wer_vs_snr.png", title)
    md = out / "noise_eval.md"
    md.write_text(result.markdown() + f"\n![WER against SNR]({png.name})\n", encoding="utf-8")
    js = out / "noise_eval.json"
    js.write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    return {"markdown": md, "json": js, "png": png}
