"""Segment a batch of micrographs with one segmenter, remembering each image's mask.

The workflow segments a sample in batches of hundreds of images per job, so that the model is
loaded once per batch, and hands the masks to the per-image steps in a temporary folder. Two
things would make it segment images again that it has segmented before: a cluster that kills a
batch (time limit, memory, a lost node), whose output Snakemake deletes, and any change after
segmentation (a separation setting, a deleted table), which needs the temporary folder back.
Network time is what a run spends most on, so every mask is also kept in a cache folder and
taken from there whenever the same pixels, at the same pixel size, are segmented by a segmenter
described exactly as the present one.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
_KEY_NAME = "key.json"
_SEGMENTER_NAME = "segmenter.json"


def pixels_sha256(image: np.ndarray) -> str:
    """A checksum of an image's pixels, shape and data type."""
    array = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.data)
    return digest.hexdigest()


class MaskCache:
    """Masks a segmenter made, one per image name, kept in ``directory`` between runs.

    A mask is reused only if the image's pixels (a checksum), its pixel size, the segmenter's
    description (model, weights' checksum, device, precision, thresholds, ...) and nanomorph's
    version are those it was made with; otherwise it is made again and replaces the old one.
    Anything unreadable counts as absent: the cache only saves time, and the folder may be
    deleted at any time.

    Parameters
    ----------
    directory
        The folder; need not exist yet.
    segmenter
        The segmenter's ``describe()``.
    """

    def __init__(self, directory: str | Path, segmenter: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        text = json.dumps({"nanomorph": __version__, **segmenter}, sort_keys=True, default=str)
        self._segmenter = hashlib.sha256(text.encode()).hexdigest()

    def _key(
        self, image: np.ndarray, pixel_size_nm: float, checksum: str | None = None
    ) -> dict[str, Any]:
        return {
            "segmenter": self._segmenter,
            "pixels_sha256": pixels_sha256(image) if checksum is None else checksum,
            "pixel_size_nm": float(pixel_size_nm),
        }

    def load(self, name: str, image: np.ndarray, pixel_size_nm: float) -> np.ndarray | None:
        """The mask kept for ``name`` if it was made from this image, or ``None``."""
        return self._load(name, self._key(image, pixel_size_nm), image.shape[-2:])

    def save(self, name: str, image: np.ndarray, pixel_size_nm: float, mask: np.ndarray) -> None:
        """Keep ``mask``; its key is written last, so a half-saved one is absent."""
        self._save(name, self._key(image, pixel_size_nm), mask)

    def segment(
        self,
        segmenter: Any,
        name: str,
        image: np.ndarray,
        pixel_size_nm: float,
        checksum: str | None = None,
    ) -> tuple[np.ndarray, bool]:
        """``segmenter(image, pixel_size_nm)``, or the mask kept from an earlier call.

        Returns the mask and whether it came from the cache. ``segmenter`` must be the one whose
        ``describe()`` this cache was opened with. ``checksum``: the image's
        :func:`pixels_sha256` where the caller has it already (None: computed here).
        """
        key = self._key(image, pixel_size_nm, checksum)  # the pixels' checksum, once per image
        mask = self._load(name, key, image.shape[-2:])
        if mask is not None:
            return mask, True
        mask = segmenter(image, pixel_size_nm)
        self._save(name, key, mask)
        return mask, False

    def _load(self, name: str, key: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
        folder = self.directory / name
        try:
            if json.loads((folder / _KEY_NAME).read_text()) != key:
                return None
            mask = read_mask_png(folder / MASK_NAME)
        except (OSError, ValueError):
            return None
        return mask if mask.shape == tuple(shape) else None

    def _save(self, name: str, key: dict[str, Any], mask: np.ndarray) -> None:
        folder = self.directory / name
        (folder / _KEY_NAME).unlink(missing_ok=True)
        write_mask_png(folder / MASK_NAME, mask)
        write_json(folder / _KEY_NAME, key)


@dataclass(frozen=True)
class BatchImage:
    """One image of a batch: its name in the output folder, how to read its pixels (called once,
    when the batch reaches it, so a batch holds one image in memory at a time) and its pixel
    size."""

    name: str
    read: Callable[[], np.ndarray]
    pixel_size_nm: float
    # The pixels' pixels_sha256 where the reader has checked it already (the workflow's records).
    checksum: str | None = None


@dataclass
class BatchReport:
    """What a batch did: images segmented now, masks taken from the cache, and the time and
    work (megapixels, in the unit of the segmenter's time limit) of those segmented now."""

    segmented: int = 0
    from_cache: int = 0
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
    cache_dir: str | Path | None = None,
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
    cache_dir
        Where each image's mask is kept (:class:`MaskCache`); a mask made before from the same
        pixels by the same segmenter is taken from there instead of segmenting again, also by a
        batch that failed partway and is run again. ``None``: no cache.
    megapixels
        The work of an image of this shape and pixel size, for the report (default: its pixels).
    """
    out_dir = Path(out_dir)
    description = segmenter.describe()
    cache = MaskCache(cache_dir, description) if cache_dir is not None else None
    report = BatchReport()
    for item in images:
        image = item.read()
        start = time.perf_counter()
        if cache is not None:
            mask, cached = cache.segment(
                segmenter, item.name, image, item.pixel_size_nm, item.checksum
            )
        else:
            mask, cached = segmenter(image, item.pixel_size_nm), False
        seconds = time.perf_counter() - start
        write_mask_png(out_dir / item.name / MASK_NAME, mask)
        if cached:
            report.from_cache += 1
            log.info("%s: mask taken from the cache", item.name)
            continue
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
    return report
