"""Find the micrographs a user names and the images they hold, without loading pixels.

The workflow expands every stack into its frames when it is parsed, so that the job graph is
static; the CLI expands folders given on the command line. Both name images as
:attr:`Micrograph.name <nanomorph.io.Micrograph.name>` does: the file stem, plus
``/frame_NNNN`` for the frames of a stack.

Snakemake parses the workflow again in every cluster job, so each job would open every file of
every sample to count its frames; :class:`FrameCountCache` remembers the counts by file
identity (size and modification and change times), so those parses only ``stat`` the files.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .micrograph import MicrographError

__all__ = ["FrameCountCache", "count_frames", "find_micrographs", "image_sources"]

# Bump when count_frames would count some file differently, so that no cache written by an
# older version is trusted.
FRAME_COUNT_RULES_VERSION = 1


def find_micrographs(path: str | Path) -> list[Path]:
    """The micrograph files that ``path`` names: a file, a folder or a glob pattern.

    A file is returned as given (its reader refuses it later if its type is unsupported); a
    folder gives the files directly inside it, and a glob the files it matches, whose suffix is
    in :data:`nanomorph.io.SUPPORTED_SUFFIXES`.

    Parameters
    ----------
    path
        A micrograph file, a folder, or a glob pattern such as ``"run_3/*.dm4"`` (relative
        patterns are matched from the working directory).

    Returns
    -------
    list of pathlib.Path
        The files, sorted by path.

    Raises
    ------
    MicrographError
        If the folder or the pattern gives no micrograph file.

    Examples
    --------
    >>> find_micrographs("catalyst_a")  # doctest: +SKIP
    [PosixPath('catalyst_a/img_001.dm3'), PosixPath('catalyst_a/img_002.dm3')]
    """
    from . import SUPPORTED_SUFFIXES

    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = list(path.iterdir())
    else:
        candidates = [Path(p) for p in glob.glob(str(path))]
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        where = "folder holds" if path.is_dir() else "is no file or folder, and as a glob matches"
        raise MicrographError(path, f"{where} no micrographs ({', '.join(SUPPORTED_SUFFIXES)})")
    return files


def count_frames(path: str | Path) -> int:
    """Number of 2-D images in a micrograph file: 1 for a single image, N for an N-frame stack.

    Counted from the shapes and units of the file's datasets as its reader describes them,
    without reading or converting any frame, so the count is what iteration yields (an ImageJ
    stack's channels and every leading axis of a TIFF series included).

    Parameters
    ----------
    path
        A micrograph file.

    Returns
    -------
    int
        The number of frames :func:`nanomorph.io.iter_micrographs` yields for the file.

    Raises
    ------
    MicrographError
        If the file is missing, unsupported or cannot be read.
    """
    from . import _count_frames

    return _count_frames(path)


def _identity(stat: os.stat_result) -> list[int]:
    # ctime as well as mtime: a file replaced by a copy that kept the old one's size and
    # modification time (rsync -a, cp -p) still gets a new change time.
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


class FrameCountCache:
    """Frame counts of micrograph files, remembered in a JSON file between runs.

    A count is reused only while the file has the size, modification time and change time it
    had when it was counted, and only if the cache was written under the present counting rules
    (``FRAME_COUNT_RULES_VERSION``); anything else is counted again. An unreadable or foreign
    cache file is ignored, never an error: the cache only saves time.

    Parameters
    ----------
    path
        The JSON file; need not exist yet.

    Examples
    --------
    >>> cache = FrameCountCache("results/.nanomorph/frame_counts.json")  # doctest: +SKIP
    >>> images = image_sources(find_micrographs("run_3"), cache=cache)  # doctest: +SKIP
    >>> cache.save()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries = self._load()
        self._used: set[str] = set()
        self._changed = False
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("rules_version") != FRAME_COUNT_RULES_VERSION:
            return {}
        files = data.get("files")
        if not isinstance(files, dict):
            return {}
        return {
            key: value
            for key, value in files.items()
            if isinstance(value, list) and len(value) == 4 and all(type(v) is int for v in value)
        }

    def count(self, path: str | Path) -> int:
        """:func:`count_frames` of ``path``, from the cache while the file is unchanged."""
        key = os.path.abspath(path)
        try:
            identity = _identity(os.stat(key))
        except OSError:
            return count_frames(path)  # raises the reader's error, naming the file
        self._used.add(key)
        entry = self._entries.get(key)
        if entry is not None and entry[:3] == identity:
            self.hits += 1
            return entry[3]
        self.misses += 1
        n_frames = count_frames(path)
        self._entries[key] = [*identity, n_frames]
        self._changed = True
        return n_frames

    def save(self) -> None:
        """Write the cache if anything was counted anew, atomically.

        Entries another process saved meanwhile are merged in (several workflow runs may share
        a results folder), and entries of files that no longer exist are dropped.
        """
        if not self._changed:
            return
        from ..outputs import atomic_path

        entries = {
            key: value
            for key, value in self._load().items()
            if key not in self._used and os.path.exists(key)
        }
        entries.update({key: self._entries[key] for key in self._used if key in self._entries})
        data = {"rules_version": FRAME_COUNT_RULES_VERSION, "files": entries}
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(data, separators=(",", ":")))
        except OSError:
            return  # a read-only results folder only costs the next parse its time
        self._changed = False


def image_sources(
    files: Iterable[str | Path], cache: FrameCountCache | None = None
) -> dict[str, tuple[Path, int | None]]:
    """Name every image in ``files``: ``{image name: (file, frame index or None)}``.

    A single image is named by its file stem, frame ``i`` of a stack ``<stem>/frame_<iiii>``,
    as :attr:`nanomorph.io.Micrograph.name` names them, so outputs land in the same folders.

    Parameters
    ----------
    files
        Micrograph files, in the order their images should keep.
    cache
        Where to look up and remember frame counts (:class:`FrameCountCache`); the caller
        saves it. None counts every file anew.

    Returns
    -------
    dict
        Image name to ``(file, frame)``; ``frame`` is None for a single image.

    Raises
    ------
    MicrographError
        If two files give the same image name (e.g. ``a.tif`` and ``a.dm4``), since their
        outputs would overwrite each other, or if a file cannot be read (see
        :func:`count_frames`).
    """
    images: dict[str, tuple[Path, int | None]] = {}
    for file in map(Path, files):
        n_frames = count_frames(file) if cache is None else cache.count(file)
        frames: Iterable[int | None] = [None] if n_frames == 1 else range(n_frames)
        for frame in frames:
            name = file.stem if frame is None else f"{file.stem}/frame_{frame:04d}"
            if name in images:
                raise MicrographError(
                    file,
                    f"gives the image name {name!r} that {images[name][0]} gives too; "
                    "rename one of them",
                )
            images[name] = (file, frame)
    return images
