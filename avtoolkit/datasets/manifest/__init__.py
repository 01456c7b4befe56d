"""Sentence-level audio-visual speech listed in manifest files (``audio|video|transcript``).

The registered ``manifest`` dataset is
:class:`avtoolkit.datasets.manifest.datamodule.ManifestDataModule` (imported on its own, so
that reading a manifest does not import Lightning).
"""

from avtoolkit.datasets.manifest.dataset import ManifestSpeech
from avtoolkit.datasets.manifest.reader import MODALITIES, Manifest, ManifestError, Utterance, read_manifest

__all__ = [
    "MODALITIES", "Manifest", "ManifestError", "ManifestSpeech", "Utterance", "read_manifest",
]
