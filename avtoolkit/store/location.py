"""Where caches go: one rule for every corpus and the mouth-crop cache.

:func:`cache_folder` is the rule: the folder the user gave (``data.cache_dir``), else the
corpus's default; and, when what is cached depends on settings the folder's name does not
carry (the crop of GRID's ROIs), a ``rois_<hash of the settings>`` sub-folder, so changing them
never reuses old clips. The defaults are one of two shapes: :func:`beside` the corpus folder
(LRW: ``<root>_mouth96_<method>``; manifests: ``<manifest folder>/mouth_cache``) or, for corpora
that are often read-only and whose folder name says little, :func:`user_cache`
(GRID: ``~/.cache/avtoolkit/grid_<root name>_<hash of the root>``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_folder(cache_dir: str | os.PathLike[str] | None, default: str | os.PathLike[str],
                 setting: str | None = None) -> Path:
    """The folder a cache lives in.

    Args:
        cache_dir: the folder the user asked for (``~`` expanded), or ``None``/empty.
        default: the corpus's default folder (:func:`beside` or :func:`user_cache`).
        setting: a stable string of the settings that change the cached content but not the
            folder's name (``MouthCropper.cache_key()``); ``None``: no sub-folder.

    Examples:
        >>> cache_folder(None, "/data/lrw_mouth96_fixed").as_posix()
        '/data/lrw_mouth96_fixed'
        >>> cache_folder("/c", "/ignored", "size=(96, 96), method='fixed'").parent.as_posix()
        '/c'
    """
    base = Path(cache_dir).expanduser() if cache_dir else Path(default)
    if setting is None:
        return base
    return base / ("rois_" + hashlib.sha1(setting.encode()).hexdigest()[:10])


def beside(source: str | os.PathLike[str], tag: str) -> Path:
    """``<source>_<tag>``, next to the corpus folder.

    Examples:
        >>> beside("/data/lipread_mp4", "mouth96_fixed").as_posix()
        '/data/lipread_mp4_mouth96_fixed'
    """
    source = Path(source).expanduser()
    return source.with_name(f"{source.name}_{tag}")


def user_cache(name: str, source: str | os.PathLike[str]) -> Path:
    """``~/.cache/avtoolkit/<name>_<source folder name>_<hash of the resolved source>``.

    Examples:
        >>> user_cache("grid", "/data/grid").name.startswith("grid_grid_")
        True
    """
    source = Path(source).expanduser().resolve()
    digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
    return Path.home() / ".cache" / "avtoolkit" / f"{name}_{source.name}_{digest}"
