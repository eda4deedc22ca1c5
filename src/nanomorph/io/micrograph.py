"""The one object every reader returns: a 2-D image with its calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class MicrographError(ValueError):
    """A file that cannot be analysed as a calibrated micrograph.

    The message is one sentence that names the file and the problem, fit to print to a user.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class Micrograph:
    """A single 2-D micrograph and its pixel calibration.

    Attributes
    ----------
    image
        2-D float32 array (rows = y, columns = x), grey levels as recorded.
    pixel_size_nm
        Edge length of one (square) pixel in nanometres, or ``None`` when neither the file nor
        the user gave a calibration (analysis in nm then refuses to run).
    source
        The file the image came from.
    frame
        Frame index within a stack or multi-image file, ``None`` for a single image.
    n_frames
        Number of frames in the source (1 for a single image).
    calibration_source
        Where ``pixel_size_nm`` came from, in words: e.g. ``"dm3 tags"``, ``"ImageJ tags"``,
        ``"TIFF resolution tags"``, ``"user"``, ``"none"``.
    raw_calibration
        The calibration as stored in the file, before conversion: scale and unit per axis, and
        anything else needed to audit the conversion.
    time_s
        Acquisition time of the frame relative to the first, in seconds, when the file has it.
    notes
        Human-readable remarks about what the reader did (resampled to square pixels, RGB
        converted to grey, ...). They end up in metadata.json.
    """

    image: np.ndarray
    pixel_size_nm: float | None
    source: Path
    frame: int | None = None
    n_frames: int = 1
    calibration_source: str = "none"
    raw_calibration: dict[str, Any] = field(default_factory=dict)
    time_s: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Output folder name: the file stem, plus ``/frame_NNNN`` for frames of a stack."""
        stem = self.source.stem
        if self.frame is None:
            return stem
        return f"{stem}/frame_{self.frame:04d}"

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.image.shape[0]), int(self.image.shape[1]))

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description (everything except the pixels)."""
        return {
            "source": str(self.source),
            "frame": self.frame,
            "n_frames": self.n_frames,
            "shape": list(self.shape),
            "pixel_size_nm": self.pixel_size_nm,
            "calibration_source": self.calibration_source,
            "raw_calibration": self.raw_calibration,
            "time_s": self.time_s,
            "notes": list(self.notes),
        }
