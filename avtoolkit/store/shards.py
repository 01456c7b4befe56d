"""``ShardClipStore``: prepared clips in tar shards of a set size, with a JSON index.

A shard is a plain POSIX tar in WebDataset's layout (members ``<key>.<field>``, one sample's
members side by side), so ``webdataset``, ``tar tvf`` and object-storage tools read it too:

- ``<key>.rois.jpgs``: the mouth ROIs, uint8 ``[T, H, W]``, each frame a baseline JPEG
  (OpenCV, quality 95 by default) behind a small header (:func:`encode_rois`). JPEG, not the
  ``.npz`` deflate of the per-clip cache: 29 real 96x96 mouth crops take 71-85 KB instead of
  131-179 KB, at a PSNR of 47-50 dB against the crops it was given (largest error 5-8 grey
  levels; ``benchmarks/shards.py`` measures both). ``quality=0`` stores PNG (lossless).
- ``<key>.<name>.npy``: every other array (16 kHz int16 ``audio``, LRW's ``duration``).
- ``<key>.json``: the clip's metadata (transcript, label, source).

Writing (``prepare --format shards``) goes through one process: samples are appended to
``<prefix>-NNNNNN.tar.partial`` until it holds ``shard_size`` samples, then the shard is
flushed to disk and renamed to ``.tar`` beside a sidecar ``.tar.json`` listing its samples
with their lengths and byte offsets. A killed run leaves at most one ``.partial``, which the
next run deletes; the clips of finished shards are skipped, so preparation resumes. Parts of
one preparation (``--part I/N``) write shards named ``partIIIofNNN-...``, disjoint by
construction; :meth:`ShardClipStore.write_index` merges every sidecar into ``index.json``,
which readers use (sample counts, lengths, offsets) without opening a shard.

Reading a clip seeks to its members' offsets, so a shard folder on a local disk or a shared
file system is read in place; a URL (``s3://...``, ``gs://...``, ``https://...``) is opened
through ``fsspec`` (installed with Lightning; the bucket's own fsspec package, e.g. ``s3fs``,
is the user's) with range requests.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from avtoolkit.atomic import atomic_write
from avtoolkit.errors import UsageError
from avtoolkit.store.base import Clip, ClipStore

INDEX_NAME = "index.json"
FORMAT = "avtoolkit-shards/1"
ROIS_FIELD = "rois.jpgs"
_MAGIC = b"AVJ1"


def encode_rois(rois: np.ndarray, quality: int = 95) -> bytes:
    """uint8 ``[T, H, W]`` (or ``[T, H, W, C]``) frames as one blob of per-frame JPEGs (PNG when ``quality`` is 0).

    Layout: ``AVJ1``, frame count (uint32), then per frame its byte length (uint32) and bytes.

    Examples:
        >>> rois = np.full((2, 8, 8), 100, np.uint8)
        >>> np.array_equal(decode_rois(encode_rois(rois, quality=0)), rois)
        True
    """
    import cv2

    if rois.dtype != np.uint8 or rois.ndim not in (3, 4):
        raise ValueError(f"mouth ROIs must be uint8 [T, H, W(, C)], got {rois.dtype} {rois.shape}")
    params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if quality == 0 else [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    ext = ".png" if quality == 0 else ".jpg"
    parts = [_MAGIC, struct.pack("<I", len(rois))]
    for frame in rois:
        ok, buf = cv2.imencode(ext, frame, params)
        if not ok:
            raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {ext}")
        parts += [struct.pack("<I", len(buf)), buf.tobytes()]
    return b"".join(parts)


def decode_rois(blob: bytes) -> np.ndarray:
    """The frames :func:`encode_rois` wrote, uint8 ``[T, H, W]`` (``[T, H, W, C]`` for colour)."""
    import cv2

    if blob[:4] != _MAGIC:
        raise ValueError("not an avtoolkit ROI blob (no AVJ1 header)")
    (count,), pos = struct.unpack_from("<I", blob, 4), 8
    frames = []
    for _ in range(count):
        (size,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        frame = cv2.imdecode(np.frombuffer(blob, np.uint8, size, pos), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise ValueError(f"frame {len(frames)} of {count} does not decode")
        frames.append(frame)
        pos += size
    return np.stack(frames) if frames else np.zeros((0, 0, 0), np.uint8)


def rois_length(blob: bytes) -> int:
    """The frame count of an :func:`encode_rois` blob, from its header."""
    return struct.unpack_from("<I", blob, 4)[0]


def encode_sample(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None, quality: int = 95,
                  length_array: str = "rois") -> tuple[dict[str, bytes], int]:
    """A clip's tar members (field -> bytes) and its length in frames; runs in a preparation worker."""
    members: dict[str, bytes] = {}
    for name, value in arrays.items():
        if name == "rois":
            members[ROIS_FIELD] = encode_rois(np.asarray(value), quality)
        else:
            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            members[f"{name}.npy"] = buf.getvalue()
    members["json"] = json.dumps(dict(meta or {}), sort_keys=True).encode()
    shape = np.shape(arrays[length_array])
    return members, int(shape[0]) if shape else 1


def decode_member(field: str, data: bytes) -> tuple[str, Any]:
    """``(array name, array)`` of one member; ``("__meta__", dict)`` for the metadata."""
    if field == ROIS_FIELD:
        return "rois", decode_rois(data)
    if field.endswith(".npy"):
        return field[: -len(".npy")], np.load(io.BytesIO(data), allow_pickle=False)
    if field == "json":
        return "__meta__", json.loads(data)
    raise ValueError(f"unknown shard member field {field!r}")


def _open(location: str, name: str):
    """A binary, seekable file of ``location/name``: a local path, or a URL through fsspec."""
    if "://" in location:
        import fsspec

        return fsspec.open(f"{location.rstrip('/')}/{name}", "rb").open()
    return open(os.path.join(location, name), "rb")


def parse_part(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``.

    Examples:
        >>> parse_part("2/3")
        (2, 3)

    Raises:
        ValueError: not ``I/N`` with ``1 <= I <= N``.
    """
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--part {text!r}: expected I/N, e.g. 2/3") from None
    if not 1 <= i <= n:
        raise ValueError(f"--part {text!r}: I must be between 1 and N")
    return i, n


def part_slice(items: Sequence[Any], part: tuple[int, int]) -> Sequence[Any]:
    """Part ``I`` of ``N`` of ``items`` (contiguous, sizes differing by at most one; the parts cover ``items`` once).

    Examples:
        >>> [list(part_slice(range(7), (i, 3))) for i in (1, 2, 3)]
        [[0, 1], [2, 3], [4, 5, 6]]
    """
    i, n = part
    return items[(i - 1) * len(items) // n: i * len(items) // n]


class ShardClipStore(ClipStore):
    """Clips in ``<root>/<prefix>-NNNNNN.tar`` shards of ``shard_size`` samples, indexed by ``index.json``.

    Writes come from one process (``single_writer``): :func:`~avtoolkit.datasets._prepare.prepare_clips`
    encodes samples in its workers (:meth:`encode`) and appends them here (:meth:`write_encoded`).
    Call :meth:`close` to finish the last shard, then :meth:`write_index`.

    Args:
        root: the shard folder (a local path; reading also takes a URL).
        shard_size: samples per shard (the last one of a run may hold fewer).
        quality: JPEG quality of the ROIs (0: PNG, lossless).
        part: ``(I, N)`` of ``prepare --part I/N`` (names this part's shards), ``(1, 1)`` for one run.
        length_array: the array whose first dimension is a clip's length.

    Examples:
        >>> import tempfile
        >>> store = ShardClipStore(tempfile.mkdtemp(), shard_size=2)
        >>> for i in range(3):
        ...     store.write(f"s1/c{i}", {"rois": np.zeros((i + 1, 8, 8), np.uint8)}, {"text": "bin blue"})
        >>> store.close(); store.write_index()["samples"]
        3
        >>> store.lengths(), store.read("s1/c2").meta
        ({'s1/c0': 1, 's1/c1': 2, 's1/c2': 3}, {'text': 'bin blue'})
    """

    single_writer = True

    def __init__(self, root: str | os.PathLike[str], shard_size: int = 1000, quality: int = 95,
                 part: tuple[int, int] = (1, 1), length_array: str = "rois") -> None:
        self.location = str(root)
        self.remote = "://" in self.location
        self.root = None if self.remote else Path(root)
        self.shard_size = int(shard_size)
        self.quality = int(quality)
        self.part = part
        self.length_array = length_array
        self._samples: dict[str, dict[str, Any]] | None = None  # key -> {"shard", "length", "members"}
        self._tar: tarfile.TarFile | None = None
        self._partial: Path | None = None
        self._pending: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"ShardClipStore({self.location!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to preparation workers, which only encode: no open shard, no loaded listing.
        return self.__dict__ | {"_samples": None, "_tar": None, "_partial": None, "_pending": []}

    @property
    def prefix(self) -> str:
        i, n = self.part
        return f"part{i:03d}of{n:03d}"

    # ---------------------------------------------------------------- listing

    def _listing(self) -> dict[str, dict[str, Any]]:
        if self._samples is None:
            self._samples = {}
            for shard in self.shards():
                for sample in shard["samples"]:
                    self._samples[sample["key"]] = sample | {"shard": shard["name"]}
        return self._samples

    def shards(self) -> list[dict[str, Any]]:
        """Every finished shard, sorted by name: ``{"name", "samples": [{"key", "length", "members"}]}``.

        From ``index.json`` when there is one (and for a URL), else from the shards' sidecars.
        """
        index = self.read_index()
        if index is not None:
            return index["shards"]
        if self.root is None or not self.root.is_dir():
            return []
        found = []
        for tar in sorted(self.root.glob("*.tar")):
            sidecar = tar.with_name(tar.name + ".json")
            found.append(json.loads(sidecar.read_text()) if sidecar.is_file() else _scan_shard(tar))
        return found

    def read_index(self) -> dict[str, Any] | None:
        """The parsed ``index.json``, or ``None`` where it is not written yet."""
        try:
            with _open(self.location, INDEX_NAME) as fh:
                index = json.loads(fh.read())
        except FileNotFoundError:
            return None
        if index.get("format") != FORMAT:
            raise ValueError(f"{self.location}/{INDEX_NAME}: format {index.get('format')!r}, expected {FORMAT!r}")
        return index

    def keys(self) -> list[str]:
        return sorted(self._listing())

    def contains(self, key: str) -> bool:
        return key in self._listing()

    def lengths(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        listing = self._listing()
        return {k: int(listing[k]["length"]) for k in (sorted(listing) if keys is None else keys)}

    def where(self, key: str) -> str:
        sample = self._listing().get(key)
        return f"{self.location}/{sample['shard']}:{key}" if sample else f"{self.location} (no {key!r})"

    def read(self, key: str, names: Sequence[str] | None = None) -> Clip:
        sample = self._listing().get(key)
        if sample is None:
            raise KeyError(f"no prepared clip {key!r} in the shards of {self.location}")
        try:
            with _open(self.location, sample["shard"]) as fh:
                return read_sample(fh, sample, names)
        except Exception as exc:
            exc.add_note(f"while reading {self.where(key)}; delete that shard (and index.json) to prepare it again")
            raise

    # ---------------------------------------------------------------- writing

    def encode(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None) -> tuple[dict[str, bytes], int]:
        """The sample's members and length (what a preparation worker sends back)."""
        return encode_sample(arrays, meta, self.quality, self.length_array)

    def write(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> None:
        self.write_encoded(key, self.encode(arrays, meta))

    def write_encoded(self, key: str, encoded: tuple[dict[str, bytes], int]) -> None:
        """Appends one encoded sample to the open shard; a full shard is finished (renamed) at once."""
        if self.root is None:
            raise ValueError(f"{self.location}: shards are written to a local folder, then copied to object storage")
        if "." in Path(key).name:
            raise ValueError(f"clip key {key!r}: WebDataset splits names at the first dot of the file name")
        if key in self._listing():
            raise ValueError(f"clip {key!r} is stored already in {self.where(key)}")
        if self._tar is None:
            self._start_shard()
        members, length = encoded
        record: dict[str, Any] = {"key": key, "length": length, "members": {}}
        for field_name, data in members.items():
            info = tarfile.TarInfo(f"{key}.{field_name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # mtime 0: same bytes on every run
            start = self._tar.offset
            self._tar.addfile(info, io.BytesIO(data))
            # USTAR headers are one 512-byte block (names of up to 255 characters; longer ones raise)
            record["members"][field_name] = [start + tarfile.BLOCKSIZE, len(data)]
        self._pending.append(record)
        self._listing()[key] = record | {"shard": self._partial.name.removesuffix(".partial")}
        if len(self._pending) >= self.shard_size:
            self._finish_shard()

    def close(self) -> None:
        """Finishes the open shard (fewer than ``shard_size`` samples); nothing happens without one."""
        if self._tar is not None:
            self._finish_shard()

    def _start_shard(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f"{self.prefix}-*.tar.partial"):
            stale.unlink()  # left by a killed run: its clips are not listed, so they are prepared again
        taken = [int(p.name[len(self.prefix) + 1:][:6]) for p in self.root.glob(f"{self.prefix}-*.tar")]
        self._partial = self.root / f"{self.prefix}-{max(taken, default=-1) + 1:06d}.tar.partial"
        self._tar = tarfile.open(self._partial, "w", format=tarfile.USTAR_FORMAT)

    def _finish_shard(self) -> None:
        self._tar.close()
        with open(self._partial, "rb+") as fh:
            os.fsync(fh.fileno())
        final = self._partial.with_name(self._partial.name.removesuffix(".partial"))
        sidecar = {"name": final.name, "samples": self._pending}
        # the sidecar first, then the shard: a shard on disk always has its listing (a killed
        # run between the two leaves a sidecar without shard, ignored, and a .partial, deleted).
        with atomic_write(final.with_name(final.name + ".json"), "w") as fh:
            json.dump(sidecar, fh)
        os.replace(self._partial, final)
        self._tar, self._partial, self._pending = None, None, []

    def write_part_done(self, failed: int) -> Path:
        """Marks this part finished (``<prefix>.done.json``): :meth:`write_index` waits for every part's mark."""
        done = self.root / f"{self.prefix}.done.json"
        own = [s for s in self.shards() if s["name"].startswith(self.prefix + "-")]
        with atomic_write(done, "w") as fh:
            json.dump({"shards": len(own), "samples": sum(len(s["samples"]) for s in own), "failed": failed}, fh)
        return done

    def missing_parts(self) -> list[str]:
        """``I/N`` of the parts whose done mark is absent, for every ``N > 1`` a mark or shard names
        (one whole run, ``1/1``, writes its index itself)."""
        if self.root is None or not self.root.is_dir():
            return []
        marks = {p.name.split(".")[0] for p in self.root.glob("part*of*.done.json")}
        totals = {int(m[-3:]) for m in marks} | {int(p.name[9:12]) for p in self.root.glob("part*of*-*.tar")}
        return [f"{i}/{n}" for n in sorted(totals - {1}) for i in range(1, n + 1)
                if f"part{i:03d}of{n:03d}" not in marks]

    def write_index(self) -> dict[str, Any]:
        """Merges the shards' sidecars into ``index.json`` (atomically) and returns it.

        Raises:
            UsageError: a part of a ``--part I/N`` preparation has not finished.
            ValueError: two shards hold one key.
        """
        if self.root is None:
            raise ValueError(f"{self.location}: the index is written where the shards were prepared")
        missing = self.missing_parts()
        if missing:
            raise UsageError(f"{self.root}: part(s) {', '.join(missing)} have not finished; run "
                             f"`avtoolkit prepare ... --part I/N` for them before writing the index")
        (self.root / INDEX_NAME).unlink(missing_ok=True)  # the listing comes from the sidecars
        shards = self.shards()
        seen: dict[str, str] = {}
        for shard in shards:
            for sample in shard["samples"]:
                if sample["key"] in seen:
                    raise ValueError(f"clip {sample['key']!r} is in both {seen[sample['key']]} and {shard['name']}")
                seen[sample["key"]] = shard["name"]
        index = {"format": FORMAT, "shards": shards, "samples": len(seen),
                 "frames": sum(s["length"] for sh in shards for s in sh["samples"])}
        with atomic_write(self.root / INDEX_NAME, "w") as fh:
            json.dump(index, fh)
        self._samples = None
        return index


def read_sample(fh: Any, sample: Mapping[str, Any], names: Sequence[str] | None = None) -> Clip:
    """One sample's arrays and metadata from an open shard, by the offsets its listing records."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for field_name, (offset, size) in sorted(sample["members"].items(), key=lambda kv: kv[1][0]):
        if names is not None and field_name != "json" and _array_name(field_name) not in names:
            continue
        fh.seek(offset)
        data = fh.read(size)
        if len(data) != size:
            raise ValueError(f"{sample['key']}.{field_name}: the shard ends {size - len(data)} bytes early")
        name, value = decode_member(field_name, data)
        if name == "__meta__":
            meta = value
        else:
            arrays[name] = value
    return Clip(arrays, meta)


def _array_name(field_name: str) -> str:
    return "rois" if field_name == ROIS_FIELD else field_name.removesuffix(".npy")


def _scan_shard(path: Path) -> dict[str, Any]:
    """A shard's listing read from its tar headers (a shard copied without its sidecar)."""
    samples: dict[str, dict[str, Any]] = {}
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            key, _, field_name = info.name.partition(".") if "/" not in info.name else _split_member(info.name)
            record = samples.setdefault(key, {"key": key, "length": 0, "members": {}})
            record["members"][field_name] = [info.offset_data, info.size]
            if field_name == ROIS_FIELD:
                tar.fileobj.seek(info.offset_data)
                record["length"] = rois_length(tar.fileobj.read(8))
    return {"name": path.name, "samples": list(samples.values())}


def _split_member(name: str) -> tuple[str, str, str]:
    folder, _, base = name.rpartition("/")
    stem, dot, field_name = base.partition(".")
    return f"{folder}/{stem}", dot, field_name
