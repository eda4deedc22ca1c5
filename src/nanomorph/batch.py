"""Segment a batch of micrographs with one segmenter, resuming a batch that was cut short.

The workflow segments a sample in batches of hundreds of images per job, so that the model is
loaded once per batch. A cluster that kills such a job (time limit, memory, a lost node) would
have it start again from its first image on the retry: hours of network time for the last image.
Snakemake removes a failed job's output, so each finished mask is also kept in a checkpoint
folder outside it and taken from there on the next attempt, as long as it was made from the same
image file, at the same pixel size, by a segmenter described exactly as the present one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .outputs import read_mask_png, write_json, write_mask_png

log = logging.getLogger(__name__)

MASK_NAME = "mask.png"
_SOURCE_NAME = "source.json"
_SEGMENTER_NAME = "segmenter.json"


def _source_identity(image_path: str | Path, pixel_size_nm: float) -> dict[str, Any]:
    stat = os.stat(image_path)
    return {
        "image": os.path.abspath(image_path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "pixel_size_nm": float(pixel_size_nm),
    }


class MaskCheckpoints:
    """Masks of an unfinished batch, kept in ``directory`` until the batch is done.

    A mask is reused only if its image file has the size and modification time it had, the pixel
    size is the same, and the segmenter's description (model, weights' checksum, device,
    precision, thresholds, ...) and nanomorph's version equal those the folder was made with;
    a folder made otherwise is emptied when it is opened. Anything unreadable counts as absent:
    checkpoints only save time.

    Parameters
    ----------
    directory
        The folder; need not exist yet.
    segmenter
        The segmenter's ``describe()``.
    """

    def __init__(self, directory: str | Path, segmenter: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        self._segmenter = json.loads(
            json.dumps({"nanomorph": __version__, **segmenter}, sort_keys=True, default=str)
        )
        try:
            recorded = json.loads((self.directory / _SEGMENTER_NAME).read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded != self._segmenter:
            if self.directory.exists():
                log.info("checkpoints in %s are of another segmenter: discarded", self.directory)
            shutil.rmtree(self.directory, ignore_errors=True)
            write_json(self.directory / _SEGMENTER_NAME, self._segmenter)

    def load(self, name: str, image_path: str | Path, pixel_size_nm: float) -> np.ndarray | None:
        """The mask saved for ``name`` from this image and pixel size, or ``None``."""
        folder = self.directory / name
        try:
            source = json.loads((folder / _SOURCE_NAME).read_text())
            if source != _source_identity(image_path, pixel_size_nm):
                return None
            return read_mask_png(folder / MASK_NAME)
        except (OSError, ValueError):
            return None

    def save(self, name: str, image_path: str | Path, pixel_size_nm: float, mask: np.ndarray):
        """Keep ``mask``; its source record is written last, so a half-saved one is absent."""
        folder = self.directory / name
        (folder / _SOURCE_NAME).unlink(missing_ok=True)
        write_mask_png(folder / MASK_NAME, mask)
        write_json(folder / _SOURCE_NAME, _source_identity(image_path, pixel_size_nm))

    def remove(self) -> None:
        """Delete the folder (the batch is complete)."""
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class BatchImage:
    """One image of a batch: its name in the output folder, its file and its pixel size."""

    name: str
    path: Path
    pixel_size_nm: float


@dataclass
class BatchReport:
    """What a batch did: images segmented now, images taken from checkpoints, and the time and
    work (megapixels, in the unit of the segmenter's time limit) of those segmented now."""

    segmented: int = 0
    resumed: int = 0
    seconds: float = 0.0
    megapixels: float = 0.0

    @property
    def seconds_per_megapixel(self) -> float | None:
        return self.seconds / self.megapixels if self.megapixels > 0 else None


def segment_batch(
    segmenter: Any,
    images: Iterable[BatchImage],
    out_dir: str | Path,
    *,
    checkpoint_dir: str | Path | None = None,
    read_image: Callable[[Path], np.ndarray] | None = None,
    megapixels: Callable[[tuple[int, ...], float], float] | None = None,
) -> BatchReport:
    """Write ``out_dir/<name>/mask.png`` for each image, then ``out_dir/segmenter.json``.

    Parameters
    ----------
    segmenter
        A :class:`nanomorph.pipeline.Segmenter` (called as ``segmenter(image, pixel_size_nm)``).
    images
        The batch.
    out_dir
        The batch's output folder; ``segmenter.json`` is written last, so the folder is complete
        only when it is there.
    checkpoint_dir
        Where finished masks are kept until the batch is done (:class:`MaskCheckpoints`); those
        of an earlier, interrupted attempt are reused. Removed when the batch completes. ``None``:
        no checkpoints.
    read_image
        Reads an image file (default: ``tifffile.imread``).
    megapixels
        The work of an image of this shape and pixel size, for the report (default: its pixels).
    """
    if read_image is None:
        import tifffile

        read_image = tifffile.imread
    out_dir = Path(out_dir)
    description = segmenter.describe()
    checkpoints = MaskCheckpoints(checkpoint_dir, description) if checkpoint_dir else None
    report = BatchReport()
    for item in images:
        mask = checkpoints.load(item.name, item.path, item.pixel_size_nm) if checkpoints else None
        if mask is not None:
            write_mask_png(out_dir / item.name / MASK_NAME, mask)
            report.resumed += 1
            log.info("%s: taken from the interrupted attempt's checkpoint", item.name)
            continue
        image = read_image(item.path)
        start = time.perf_counter()
        mask = segmenter(image, item.pixel_size_nm)
        seconds = time.perf_counter() - start
        if checkpoints is not None:
            checkpoints.save(item.name, item.path, item.pixel_size_nm, mask)
        write_mask_png(out_dir / item.name / MASK_NAME, mask)
        work = megapixels(image.shape, item.pixel_size_nm) if megapixels else image.size / 1e6
        report.segmented += 1
        report.seconds += seconds
        report.megapixels += work
        log.info(
            "%s: %.1f %% particle, %.1f s for %.2f megapixels",
            item.name,
            100 * np.mean(mask),
            seconds,
            work,
        )
    write_json(out_dir / _SEGMENTER_NAME, description)
    if checkpoints is not None:
        checkpoints.remove()
    return report
