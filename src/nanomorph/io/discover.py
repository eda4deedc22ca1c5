"""Find the micrographs a user names and the images they hold, without loading pixels.

The workflow expands every stack into its frames when it is parsed, so that the job graph is
static; the CLI expands folders given on the command line. Both name images as
:attr:`Micrograph.name <nanomorph.io.Micrograph.name>` does: the file stem, plus
``/frame_NNNN`` for the frames of a stack.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from .micrograph import MicrographError

__all__ = ["count_frames", "find_micrographs", "image_sources"]


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


def image_sources(files: Iterable[str | Path]) -> dict[str, tuple[Path, int | None]]:
    """Name every image in ``files``: ``{image name: (file, frame index or None)}``.

    A single image is named by its file stem, frame ``i`` of a stack ``<stem>/frame_<iiii>``,
    as :attr:`nanomorph.io.Micrograph.name` names them, so outputs land in the same folders.

    Parameters
    ----------
    files
        Micrograph files, in the order their images should keep.

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
        n_frames = count_frames(file)
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
