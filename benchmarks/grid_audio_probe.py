"""Short audio-only CTC experiments on GRID: why does the audio branch not learn real speech?

Log-mel features of a few hundred GRID clips are computed once (cached in ``--cache``) so
each variant trains in minutes on a loaded 2-core CPU. The model is built from the registered
components exactly as a recipe would build it; only the training loop is this file's own
(Adam, optional warm-up + cosine, gradient clipping at 5 like the recipes).

    nice python benchmarks/grid_audio_probe.py --root ../shared/data/grid_s1 \
        --variant baseline --variant cmvn --epochs 30 --out /tmp/grid_probe.json

Each variant writes per-epoch train loss and test greedy CER/WER into the JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

#: variant -> (normalisation, encoder overrides, lr, schedule)
VARIANTS: dict[str, dict] = {
    # what avasr_audio_only + demo widths do today: raw log-mel, freq+time striding, lr 5e-4 constant
    "baseline": {"norm": None, "enc": {}, "lr": 5e-4, "schedule": "constant"},
    "cmvn": {"norm": "utterance", "enc": {}, "lr": 5e-4, "schedule": "constant"},
    "lr2e-3": {"norm": None, "enc": {}, "lr": 2e-3, "schedule": "cosine"},
    "cmvn_lr2e-3": {"norm": "utterance", "enc": {}, "lr": 2e-3, "schedule": "cosine"},
    "time_stride": {"norm": None, "enc": {"freq_subsampling": 0}, "lr": 5e-4, "schedule": "constant"},
    "cmvn_time_stride_lr2e-3": {"norm": "utterance", "enc": {"freq_subsampling": 0}, "lr": 2e-3,
                                "schedule": "cosine"},
    "global_norm": {"norm": "global", "enc": {}, "lr": 5e-4, "schedule": "constant"},
    "cmvn_stride2": {"norm": "utterance", "enc": {"time_subsampling": 1}, "lr": 5e-4, "schedule": "constant"},
    "cmvn_specaug": {"norm": "utterance", "enc": {}, "lr": 5e-4, "schedule": "constant", "spec": True},
    "cmvn_stride2_specaug_lr2e-3": {"norm": "utterance", "enc": {"time_subsampling": 1}, "lr": 2e-3,
                                    "schedule": "cosine", "spec": True},
    # the grid_audio recipe after docs/grid.md's finding 7: no per-utterance normalisation
    "raw_stride2_specaug_lr2e-3": {"norm": None, "enc": {"time_subsampling": 1}, "lr": 2e-3,
                                   "schedule": "cosine", "spec": True},
    "cmvn_time_stride_specaug_lr2e-3": {"norm": "utterance", "enc": {"freq_subsampling": 0}, "lr": 2e-3,
                                        "schedule": "cosine", "spec": True},
    # a reference that is known to work on small ASR sets: frame stacking to 50 Hz + 2-layer BiGRU
    "cmvn_bigru_lr2e-3": {"norm": "utterance", "enc": None, "lr": 2e-3, "schedule": "cosine", "spec": True},
}


class BiGRUReference(torch.nn.Module):
    """Stack 2 log-mel frames (50 Hz), 2-layer bidirectional GRU, CTC projection (not a registered part)."""

    def __init__(self, n_mels: int = 40, hidden: int = 128, vocab: int = 29) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(2 * n_mels, hidden, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)
        self.proj = torch.nn.Linear(2 * hidden, vocab)

    def forward(self, batch: dict) -> dict:
        x, n = batch["audio"], batch["audio_lengths"]
        t = x.shape[1] // 2
        x = x[:, : 2 * t].reshape(x.shape[0], t, -1)
        n = torch.div(n, 2, rounding_mode="floor")
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = torch.nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=t)
        return {"log_probs": self.proj(h).log_softmax(-1), "lengths": n}


def load_features(root: Path, ids: list[str], cache: Path) -> dict[str, torch.Tensor]:
    from avtoolkit.data.features import LogMel
    from avtoolkit.data.media import read_audio

    feats: dict[str, torch.Tensor] = torch.load(cache) if cache.exists() else {}
    missing = [i for i in ids if i not in feats]
    log_mel = LogMel()
    for i in missing:
        wave = torch.from_numpy(read_audio(root / "s1" / f"{i}.mp4", sample_rate=16000))
        feats[i] = log_mel(wave)
    if missing:
        torch.save(feats, cache)
    return feats


def speech_span(root: Path, clip_id: str) -> tuple[float, float]:
    """Seconds from the first word's start to the last word's end, from the clip's alignment."""
    rows = [ln.split() for ln in (root / "alignments" / "s1" / f"{clip_id}.align").read_text().splitlines()
            if ln.strip()]
    words = [(int(a), int(b)) for a, b, w in rows if w not in ("sil", "sp")]
    return words[0][0] / 25000, words[-1][1] / 25000


def trim(x: torch.Tensor, span: tuple[float, float], margin: float, rate: float = 100.0) -> torch.Tensor:
    """Log-mel frames ``x`` (at ``rate`` Hz) cut to the speech span +- ``margin`` seconds."""
    lo = max(0, int((span[0] - margin) * rate))
    return x[lo:int((span[1] + margin) * rate) + 1]


def transcript(root: Path, clip_id: str) -> str:
    words = [ln.split()[2] for ln in (root / "alignments" / "s1" / f"{clip_id}.align").read_text().splitlines()
             if ln.strip()]
    return " ".join(w for w in words if w not in ("sil", "sp"))


def normalise(x: torch.Tensor, how: str | None, stats: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    if how == "utterance":
        return (x - x.mean(0)) / (x.std(0) + 1e-5)
    if how == "global":
        return (x - stats[0]) / stats[1]
    return x


def run_variant(name: str, train, test, epochs: int, batch_size: int, widths: str, tag: str = "",
                train_spans: list | None = None, trim_train: float | None = None) -> dict:
    from avtoolkit import build_model
    from avtoolkit.data.text import CharVocab

    cfg = VARIANTS[name]
    torch.manual_seed(0)
    small = widths == "demo"
    enc = {"name": "audio_cnn", "channels": [16, 32, 64] if small else [32, 64, 128],
           "hidden_dim": 128 if small else 512, "dropout": 0.1, **(cfg["enc"] or {})}
    ch = 128 if small else 256
    model = BiGRUReference() if cfg["enc"] is None else build_model({"model": {"encoders": {"audio": enc},
                                   "backends": [{"name": "tcn", "channels": ch, "layers": 2 if small else 3,
                                                 "kernel_size": 5, "dropout": 0.1}],
                                   "head": {"name": "ctc"}}})
    vocab = CharVocab()
    allx = torch.cat([x for x, _ in train])
    stats = (allx.mean(0), allx.std(0) + 1e-5)
    prep = lambda data: [(normalise(x, cfg["norm"], stats), torch.tensor(vocab.encode(t)), t) for x, t in data]
    tr, te = prep(train), prep(test)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps = epochs * math.ceil(len(tr) / batch_size)
    warm = math.ceil(len(tr) / batch_size)
    if cfg["schedule"] == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, steps - warm)))))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    def batchify(items):
        xs = torch.nn.utils.rnn.pad_sequence([x for x, _, _ in items], batch_first=True)
        ys = torch.nn.utils.rnn.pad_sequence([y for _, y, _ in items], batch_first=True)
        return ({"audio": xs, "audio_lengths": torch.tensor([len(x) for x, _, _ in items])},
                ys, torch.tensor([len(y) for _, y, _ in items]))

    curve, start = [], time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(tr)).tolist()
        losses = []
        for b in range(0, len(tr), batch_size):
            items = [tr[i] for i in perm[b:b + batch_size]]
            if trim_train is not None:
                # a fresh random silence margin on each side, so the clip's edges mark nothing
                items = [(trim(x, train_spans[i], float(torch.rand(1)) * trim_train), y, t)
                         for i, (x, y, t) in zip(perm[b:b + batch_size], items)]
            if cfg.get("spec"):
                from avtoolkit.data.augment import spec_augment
                items = [(spec_augment(x, 2, 8, 2, 0.05), y, t) for x, y, t in items]
            batch, ys, ylen = batchify(items)
            out = model(batch)
            loss = F.ctc_loss(out["log_probs"].float().transpose(0, 1), ys, out["lengths"], ylen,
                              blank=0, zero_infinity=True)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        model.eval()
        import torchmetrics.functional.text as M


        def decode(data):
            hyps, refs = [], []
            with torch.no_grad():
                for b in range(0, len(data), 32):
                    items = data[b:b + 32]
                    batch, _, _ = batchify(items)
                    out = model(batch)
                    for lp, n, (_, _, t) in zip(out["log_probs"], out["lengths"], items):
                        hyps.append(vocab.ctc_collapse(lp[:n].argmax(-1).tolist()))
                        refs.append(t)
            return hyps, refs

        hyps, refs = decode(te)
        # the same number of training clips, decoded in eval mode: memorised vs learnt
        train_hyps, train_refs = decode(tr[: len(te)])
        row = {"epoch": epoch + 1, "train_loss": sum(losses) / len(losses),
               "train_cer": float(M.char_error_rate(train_hyps, train_refs)),
               "test_cer": float(M.char_error_rate(hyps, refs)), "test_wer": float(M.word_error_rate(hyps, refs)),
               "seconds": round(time.time() - start, 1), "example": hyps[0]}
        curve.append(row)
        print(name + tag, json.dumps(row), flush=True)
    return {"variant": name, "config": cfg, "widths": widths, "curve": curve, "ref0": te[0][2]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("../shared/data/grid_s1"))
    p.add_argument("--train", type=int, default=300)
    p.add_argument("--test", type=int, default=50)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--widths", choices=["demo", "full"], default="demo")
    p.add_argument("--tag", default="", help="appended to the variant names in the printed curves")
    p.add_argument("--shuffled", action="store_true", help="take clips in hash order, not id order")
    p.add_argument("--variant", action="append", choices=list(VARIANTS))
    p.add_argument("--trim", type=float, default=None, metavar="SECONDS",
                   help="cut every clip to its aligned speech +- SECONDS (training and test): is the "
                        "silence around GRID's sentences what the model learns to misuse?")
    p.add_argument("--trim-train", type=float, default=None, metavar="SECONDS",
                   help="cut training clips (only) to their aligned speech +- a random margin up to "
                        "SECONDS on each side, drawn afresh every epoch; test clips stay whole")
    p.add_argument("--cache", type=Path, default=Path("/tmp/grid_probe_logmel.pt"))
    p.add_argument("--out", type=Path, default=Path("/tmp/grid_probe.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    from avtoolkit.datasets.grid.splits import hash_unit, hash_split

    ids = sorted(f.stem for f in (args.root / "s1").glob("*.mp4"))
    split = {i: hash_split(f"s1/{i}", {"train": 0.8, "val": 0.1, "test": 0.1}) for i in ids}
    # --shuffled: the first N in hash order; otherwise the first N in id order (sorted ids group
    # by command and colour: the first 300 training ids are all "bin ..." and "lay ...").
    order = sorted(ids, key=lambda i: hash_unit(f"s1/{i}")) if args.shuffled else ids
    train_ids = [i for i in order if split[i] == "train"][: args.train]
    test_ids = [i for i in order if split[i] == "test"][: args.test]
    feats = load_features(args.root, train_ids + test_ids, args.cache)
    cut = (lambda i: trim(feats[i], speech_span(args.root, i), args.trim)) if args.trim is not None \
        else (lambda i: feats[i])
    train = [(cut(i), transcript(args.root, i)) for i in train_ids]
    test = [(cut(i), transcript(args.root, i)) for i in test_ids]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for v in args.variant or ["baseline"]:
        results[f"{v}/{args.widths}"] = run_variant(v, train, test, args.epochs, args.batch_size, args.widths,
                                                             args.tag, [speech_span(args.root, i) for i in train_ids],
                                                             args.trim_train)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
