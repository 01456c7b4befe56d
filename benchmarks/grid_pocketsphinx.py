"""pocketsphinx with GRID's grammar on the GRID test split: a reference audio-only recogniser.

Usage::

    make bench-peers                  # installs benchmarks/requirements-peers.txt, runs on ../shared/data/grid_s1
    python benchmarks/grid_pocketsphinx.py --root ../shared/data/grid_s1 --out benchmarks/results/grid_pocketsphinx
    python benchmarks/grid_pocketsphinx.py --root DIR --noise babble --snr clean 0 --limit 20

The clips and the audio are those ``avtoolkit noise-eval`` scores the ``grid_avasr`` models on:
the recipe builds the ``grid`` datamodule with ``data.test_noise_snr_db`` and
``data.noise_type`` set, and each test clip's waveform comes from
:meth:`~avtoolkit.datasets.grid.clips.GridSentences.noisy_wave`, the noisy 16 kHz samples the
dataset turns into log-mel, drawn with the same per-clip generator. pocketsphinx (CMU's
English acoustic model shipped in its wheel) decodes each one against a JSGF grammar of
GRID's six word slots, so every hypothesis is a GRID sentence. WER and CER are torchmetrics'
corpus-level rates, as in training and ``noise-eval``.

pocketsphinx is an optional peer of this benchmark only, never a dependency of the package.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: import avtoolkit from this checkout first
    sys.path.insert(0, str(ROOT))

from avtoolkit.data.grid_grammar import GRID_SLOTS, GRID_WORDS, SLOT_NAMES  # noqa: E402

#: The JSGF grammar's rule names, in sentence order ("bin blue at f two now").
SLOT_ORDER: tuple[str, ...] = SLOT_NAMES
#: Pronunciations that replace or extend the shipped CMU dictionary's, and why:
#: ``a`` is only ever the letter in GRID, never the article ``AH`` that cmudict lists first;
#: GRID's talkers are British (recorded in Sheffield), who say ``zed`` as often as ``zee``.
PRONUNCIATION_OVERRIDES: dict[str, tuple[str, ...]] = {"a": ("EY",), "z": ("Z IY", "Z EH D")}
#: The decoder's name in tables, as noise-eval names its decoders.
DECODER = "pocketsphinx + JSGF grid"
INSTALL_HINT = "run `make bench-peers` (pip installs benchmarks/requirements-peers.txt into .venv)"


def grid_jsgf() -> str:
    """GRID's sentence grammar as JSGF: one public rule, the six slots in order, each slot's words.

    Examples:
        >>> print(grid_jsgf().splitlines()[2])
        public <sentence> = <command> <colour> <preposition> <letter> <digit> <adverb>;
        >>> grid_jsgf().splitlines()[3]
        '<command> = bin | lay | place | set;'
    """
    lines = ["#JSGF V1.0;", "grammar grid;",
             f"public <sentence> = {' '.join(f'<{slot}>' for slot in SLOT_ORDER)};"]
    lines += [f"<{slot}> = {' | '.join(GRID_SLOTS[slot])};" for slot in SLOT_ORDER]
    return "\n".join(lines) + "\n"


def read_cmudict(text: str) -> dict[str, list[str]]:
    """Word -> pronunciations (ARPAbet phone strings) of a CMU-format dictionary, alternates in order.

    Examples:
        >>> read_cmudict("a AH\\na(2) EY\\nbin B IH N\\n")
        {'a': ['AH', 'EY'], 'bin': ['B IH N']}
    """
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        word, _, phones = line.strip().partition(" ")
        if not word or not phones.strip() or word.startswith(";;;"):
            continue
        out.setdefault(word.split("(")[0], []).append(" ".join(phones.split("#")[0].split()))
    return out


def grid_dictionary(cmudict: dict[str, list[str]]) -> str:
    """The decoder's dictionary: every GRID word with its pronunciations (cmudict's, then the overrides).

    Raises:
        ValueError: a GRID word that neither the dictionary nor the overrides pronounce (named).

    Examples:
        >>> lines = grid_dictionary({w: ["X"] for w in GRID_WORDS}).splitlines()
        >>> lines[0], [l for l in lines if l.split()[0] in ("z", "z(2)")]
        ('bin X', ['z Z IY', 'z(2) Z EH D'])
    """
    missing = [w for w in GRID_WORDS if w not in cmudict and w not in PRONUNCIATION_OVERRIDES]
    if missing:
        raise ValueError(f"no pronunciation for the GRID words {', '.join(missing)}: add them to "
                         "PRONUNCIATION_OVERRIDES in benchmarks/grid_pocketsphinx.py")
    lines = []
    for word in GRID_WORDS:
        prons = PRONUNCIATION_OVERRIDES.get(word) or cmudict[word]
        lines += [f"{word if i == 0 else f'{word}({i + 1})'} {p}" for i, p in enumerate(dict.fromkeys(prons))]
    return "\n".join(lines) + "\n"


def write_decoder_files(folder: str | Path, cmudict_path: str | Path) -> tuple[Path, Path]:
    """Writes ``grid.gram`` (JSGF) and ``grid.dict`` (pronunciations from ``cmudict_path``) into ``folder``.

    Returns:
        ``(grammar, dictionary)`` paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gram, dic = folder / "grid.gram", folder / "grid.dict"
    gram.write_text(grid_jsgf(), encoding="utf-8")
    dic.write_text(grid_dictionary(read_cmudict(Path(cmudict_path).read_text(encoding="utf-8"))), encoding="utf-8")
    return gram, dic


def grid_datamodule(root: str | Path, noise: str, snr: float | None, recipe: str = "grid_avasr",
                    overrides: Sequence[str] = (), prepare: bool = False) -> Any:
    """The recipe's ``grid`` datamodule, set up for testing with noise-eval's settings for ``noise`` at ``snr``.

    The same overrides ``avtoolkit noise-eval`` gives the recipe (``data.test_noise_snr_db``,
    ``data.noise_type``), so the test clips, the babble pool and every noise draw match.

    Args:
        root: ``data.root``.
        noise: ``data.noise_type`` (``babble`` or ``white``).
        snr: ``data.test_noise_snr_db``; ``None`` for clean audio.
        recipe: a shipped recipe's name or a recipe file.
        overrides: more recipe overrides (``data.cache_dir=...``).
        prepare: first prepare the clips not in the cache yet (as ``avtoolkit run`` would).

    Raises:
        UsageError: the recipe's dataset is not ``grid`` in ``sentence`` mode.
    """
    from avtoolkit.engine.resolve import build_datamodule
    from avtoolkit.recipe import validate_recipe

    quoted = "'" + str(root).replace("'", "''") + "'"
    extra = [f"data.root={quoted}", f"data.noise_type={noise}",
             f"data.test_noise_snr_db={'null' if snr is None else snr}"]
    dm = build_datamodule(validate_recipe(recipe, [*extra, *overrides]))
    if getattr(dm, "mode", None) != "sentence":
        from avtoolkit.errors import UsageError

        raise UsageError(f"--recipe {recipe}: needs the grid dataset in sentence mode (data.name: grid, "
                         "data.mode: sentence), as grid_avasr has")
    if prepare:
        dm.prepare_data()
    dm.setup("test")
    return dm


def noisy_test_waves(dm: Any, limit: int | None = None) -> Iterator[tuple[str, str, torch.Tensor]]:
    """``(clip key, transcript, noisy 16 kHz waveform)`` of each test clip, as the dataset feeds its log-mel."""
    test = dm.splits["test"]
    for i in range(len(test) if limit is None else min(limit, len(test))):
        clip = test.clips[i]
        yield clip.key, clip.transcript, test.noisy_wave(i)


def to_pcm16(wave: torch.Tensor) -> tuple[bytes, bool]:
    """16-bit PCM bytes of a float waveform, and whether it had to be scaled down to fit.

    Noise at low SNR can push samples past full scale; scaling the whole utterance keeps
    its shape (pocketsphinx normalises the cepstral mean per utterance), clipping would not.

    Examples:
        >>> to_pcm16(torch.tensor([0.5, -1.0]))
        (b'\\x00@\\x00\\x80', False)
        >>> to_pcm16(torch.tensor([2.0, -1.0]))
        (b'\\xff\\x7f\\x00\\xc0', True)
    """
    x = wave * 32768
    # int16 holds -32768..32767: a clean clip read from 16-bit audio always fits as it is
    gain = min(1.0, 32767 / float(x.max().clamp(min=1.0)), 32768 / float((-x.min()).clamp(min=1.0))) \
        if x.numel() else 1.0
    return (x * gain).round().clamp(-32768, 32767).to(torch.int16).numpy().tobytes(), gain < 1.0


class Recogniser:
    """pocketsphinx's decoder with the shipped US-English acoustic model and GRID's grammar.

    Raises:
        ImportError: pocketsphinx is not installed.
    """

    def __init__(self, folder: str | Path) -> None:
        import pocketsphinx

        model = Path(pocketsphinx.get_model_path()) / "en-us"
        gram, dic = write_decoder_files(folder, model / "cmudict-en-us.dict")
        self.decoder = pocketsphinx.Decoder(hmm=str(model / "en-us"), dict=str(dic), jsgf=str(gram),
                                            samprate=16000, loglevel="FATAL")

    def __call__(self, pcm16: bytes) -> str:
        """The words decoded from one whole utterance (``""`` when none).

        Normally a GRID sentence. When no path reaches the grammar's end by the last frame
        (in loud noise), pocketsphinx returns its best partial path: fewer than six words.
        """
        self.decoder.start_utt()
        self.decoder.process_raw(pcm16, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


@dataclass
class Condition:
    """The figures of one noise x SNR pass over the test split.

    ``incomplete`` counts hypotheses that are not a whole GRID sentence (no or fewer than six
    words); ``rescaled`` counts clips whose noisy samples passed full scale (see :func:`to_pcm16`).
    """

    noise: str
    snr: str
    wer: float
    cer: float
    clips: int
    incomplete: int
    rescaled: int
    seconds: float
    slot_errors: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A noise-eval JSON row (``decoder, noise, inputs, snr, wer, cer``) with this benchmark's extras."""
        return {"decoder": DECODER, "noise": self.noise, "inputs": "audio-only", "snr": self.snr, "wer": self.wer,
                "cer": self.cer, "clips": self.clips, "incomplete": self.incomplete,
                "rescaled": self.rescaled, "seconds": self.seconds, "slot_errors": self.slot_errors}


def slot_errors(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Fraction of sentences whose word in each slot is wrong (a missing hypothesis is wrong everywhere).

    Examples:
        >>> slot_errors(["bin blue at f two now", ""], ["bin blue at f two now", "set red by c one soon"])["letter"]
        0.5
    """
    wrong = dict.fromkeys(SLOT_ORDER, 0)
    for hyp, ref in zip(hyps, refs):
        h, r = hyp.split(), ref.split()
        for i, slot in enumerate(SLOT_ORDER):
            wrong[slot] += len(h) != len(SLOT_ORDER) or i >= len(r) or h[i] != r[i]
    return {slot: n / max(len(refs), 1) for slot, n in wrong.items()}


def run_condition(recognise: Recogniser, dm: Any, noise: str, snr: float | None,
                  limit: int | None = None) -> tuple[Condition, list[dict[str, str]]]:
    """Decodes every test clip of ``dm`` and scores it; also returns ``{id, ref, hyp}`` per clip."""
    import torchmetrics

    from avtoolkit.data.text import normalize_text
    from avtoolkit.engine.noise_eval import snr_label

    started = time.perf_counter()
    hyps, refs, ids = [], [], []
    incomplete = rescaled = 0
    for key, ref, wave in noisy_test_waves(dm, limit):
        pcm, scaled = to_pcm16(wave)
        rescaled += scaled
        hyp = recognise(pcm)
        hyps.append(normalize_text(hyp))
        incomplete += len(hyps[-1].split()) != len(SLOT_ORDER)
        refs.append(normalize_text(ref))
        ids.append(key)
    wer = float(torchmetrics.text.WordErrorRate()(hyps, refs))
    cer = float(torchmetrics.text.CharErrorRate()(hyps, refs))
    cond = Condition(noise, snr_label(snr), wer, cer, len(refs), incomplete, rescaled,
                     round(time.perf_counter() - started, 1), slot_errors(hyps, refs))
    return cond, [{"id": i, "ref": r, "hyp": h} for i, r, h in zip(ids, refs, hyps)]


def markdown(result: dict[str, Any]) -> str:
    """The table: a row per noise x SNR (clean once), WER and CER in %, clips, seconds; then errors by slot."""
    head = (f"# pocketsphinx on GRID: `{result['recipe']}` test split\n\n"
            f"pocketsphinx {result['pocketsphinx']} (shipped en-us acoustic model, GRID grammar as JSGF), "
            f"on the test clips and noisy audio `avtoolkit noise-eval` scores `{result['recipe']}` on. "
            f"Data: `{result['root']}`. {result['seconds']:.0f} s in all. WER and CER are corpus-level "
            "(torchmetrics). *incomplete*: hypotheses that are not a whole GRID sentence (no path reached "
            "the grammar's end, so pocketsphinx returned its best partial one).\n\n")
    table = ["| noise | SNR | WER % | CER % | clips | incomplete | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    slots = [f"| noise | SNR | {' | '.join(SLOT_ORDER)} |", f"| --- | --- |{' ---: |' * len(SLOT_ORDER)}"]
    seen_clean = False
    for r in result["rows"]:
        if r["snr"] == "clean":
            if seen_clean:
                continue  # clean audio is the same for every noise: one row
            seen_clean = True
        noise, snr = ("-", "clean") if r["snr"] == "clean" else (r["noise"], f"{r['snr']} dB")
        table.append(f"| {noise} | {snr} | {100 * r['wer']:.1f} | {100 * r['cer']:.1f} | {r['clips']} | "
                     f"{r['incomplete']} | {r['seconds']:.0f} |")
        wrong = " | ".join(f"{100 * r['slot_errors'][s]:.1f}" for s in SLOT_ORDER)
        slots.append(f"| {noise} | {snr} | {wrong} |")
    return (head + "\n".join(table) + "\n\n## Sentences with the wrong word, by slot (%)\n\nAn incomplete hypothesis counts as wrong in "
            "every slot.\n\n"
            + "\n".join(slots) + "\n")


def run(root: str | Path, noises: Sequence[str], snrs: Sequence[float | None], recipe: str = "grid_avasr",
        overrides: Sequence[str] = (), limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Every noise x SNR condition; clean once, repeated under each noise (as ``noise_eval.json`` does).

    Returns:
        ``noise_eval.json``-style plain types: ``recipe, split, decoders, noises, snrs, inputs, rows``
        plus ``pocketsphinx`` (version), ``root``, ``seconds`` and ``hypotheses`` (per condition, per clip).
    """
    from importlib.metadata import version

    from avtoolkit.engine.noise_eval import snr_label

    started = time.perf_counter()
    recognise = Recogniser(tempfile.mkdtemp(prefix="avtoolkit-pocketsphinx-"))
    done: dict[tuple[str | None, str], tuple[Condition, list[dict[str, str]]]] = {}
    rows, hypotheses = [], {}
    for noise in noises:
        for snr in snrs:
            key = (None if snr is None else noise, snr_label(snr))
            if key not in done:
                dm = grid_datamodule(root, noise, snr, recipe, overrides, prepare=not done)
                done[key] = run_condition(recognise, dm, noise, snr, limit)
                cond = done[key][0]
                hypotheses["clean" if snr is None else f"{noise} {cond.snr}"] = done[key][1]
                if progress:
                    print(f"{'clean' if snr is None else f'{noise} {cond.snr} dB'}: WER {100 * cond.wer:.1f}%  "
                          f"CER {100 * cond.cer:.1f}%  ({cond.clips} clips, {cond.incomplete} not a whole "
                          f"sentence, {cond.seconds:.0f} s)", file=sys.stderr, flush=True)
            cond = done[key][0]
            rows.append(Condition(**{**cond.__dict__, "noise": noise}).row())
    return {"recogniser": DECODER, "pocketsphinx": version("pocketsphinx"), "recipe": recipe, "root": str(root),
            "split": "test", "decoders": [DECODER], "noises": list(noises), "snrs": [snr_label(s) for s in snrs],
            "inputs": ["audio-only"], "rows": rows, "evaluations": len(done),
            "seconds": round(time.perf_counter() - started, 1), "hypotheses": hypotheses}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from avtoolkit.engine.noise_eval import NOISES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="GRID folder holding s<N>/ and alignments/ (data.root)")
    p.add_argument("--recipe", default="grid_avasr", help="recipe whose test split and noise are used")
    p.add_argument("--noise", nargs="+", default=list(NOISES), choices=list(NOISES), help="noise types")
    p.add_argument("--snr", nargs="+", default=["clean", "10", "5", "0", "-5", "-10"],
                   help="SNRs in dB, 'clean' for none")
    p.add_argument("--limit", type=int, default=None, help="only the first N test clips (a quick look)")
    p.add_argument("--out", type=Path, default=None, help="write pocketsphinx.md and pocketsphinx.json here")
    p.add_argument("overrides", nargs="*", help="recipe overrides, key=value (data.cache_dir=...)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        print(f"grid_pocketsphinx: pocketsphinx is not installed; {INSTALL_HINT}", file=sys.stderr)
        return 2
    from avtoolkit.engine.noise_eval import parse_snr
    from avtoolkit.errors import AvtoolkitError

    torch.set_num_threads(1)  # pocketsphinx decodes on one core; torch only adds noise
    try:
        snrs = list(dict.fromkeys(parse_snr(s) for s in args.snr))
        result = run(args.root, list(dict.fromkeys(args.noise)), snrs, args.recipe, args.overrides, args.limit)
    except AvtoolkitError as exc:
        print(f"grid_pocketsphinx: {exc}", file=sys.stderr)
        return 2
    text = markdown(result)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pocketsphinx.md").write_text(text, encoding="utf-8")
        (args.out / "pocketsphinx.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
