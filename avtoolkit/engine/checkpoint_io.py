"""Lightning's checkpoint I/O through avtoolkit's atomic writer and weights-only reader."""

from __future__ import annotations

from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from avtoolkit.models.checkpoint import read_checkpoint, save_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` that writes through :func:`save_atomic` and reads weights-only.

    Lightning's own ``_atomic_save`` relies on an fsspec transaction; this plugin makes the
    temp-file-then-rename explicit and fsyncs before the rename, so ``last.ckpt`` and
    ``best.ckpt`` are either the old or the new file after a kill.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_atomic(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or "cpu")
