"""FEI/Thermo Fisher TIA .ser files, read through ncempy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._core import Axis, ImageBlock, Refusal
from .dm import quiet_ncempy

SUFFIXES = (".ser",)
CALIBRATION_SOURCE = "ser calibration"
_SER_SPECTRUM = 0x4120
_SER_IMAGE = 0x4122


def read_ser_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """The images of a SER file as one block (a stack when the series has several elements).

    SER calibrations are in metres; the element tags give acquisition times, which become
    per-frame ``time_s`` relative to the first element.

    Parameters
    ----------
    path
        A .ser file.

    Returns
    -------
    list
        One :class:`ImageBlock`, or a :class:`Refusal` for spectra.

    Raises
    ------
    ncempy.io.ser.NotSERError
        When the file is not a SER file (wrapped by the public readers).
    """
    from ncempy.io import ser

    with quiet_ncempy(), ser.fileSER(path) as ser_file:
        head = ser_file.head
        if head["DataTypeID"] == _SER_SPECTRUM:
            return [Refusal("0", "it holds spectra (SER 1-D data), not images")]
        n_elements = int(head["ValidNumberElements"])
        if head["DataTypeID"] != _SER_IMAGE or n_elements == 0:
            return [Refusal("0", "it holds no image elements")]
        # Only the first element's pixels are read here (for its calibration and shape); the
        # rest when a frame is needed, one element at a time where only one is.
        first, meta = ser_file.getDataset(0)
        first = np.asarray(first)
        calibration = meta["Calibration"]
        times: list[float] = []
        for index in range(n_elements):
            try:
                times.append(float(ser_file._getTag(index)["Time"]))
            except (KeyError, TypeError, ValueError, OSError):
                times = []
                break
    # SER lists the calibration of the x (column) axis first.
    x_delta = float(calibration[0]["CalibrationDelta"]) if calibration else None
    y_delta = (
        float(calibration[1]["CalibrationDelta"])
        if calibration and len(calibration) > 1
        else x_delta
    )
    frame_times = [t - times[0] for t in times] if len(times) == n_elements > 1 else None

    def load_frame(k: int) -> np.ndarray:
        with quiet_ncempy(), ser.fileSER(path) as again:
            return np.asarray(again.getDataset(k)[0])

    def load() -> np.ndarray:
        if n_elements == 1:
            return first
        with quiet_ncempy(), ser.fileSER(path) as again:
            return np.stack([np.asarray(again.getDataset(k)[0]) for k in range(n_elements)])

    return [
        ImageBlock(
            label="0",
            shape=(n_elements, *first.shape) if n_elements > 1 else tuple(first.shape),
            dtype=first.dtype,
            load=load,
            load_frame=load_frame if n_elements > 1 else None,
            y=Axis(y_delta, "m", "y"),
            x=Axis(x_delta, "m", "x"),
            calibration_source=CALIBRATION_SOURCE,
            frame_times_s=frame_times,
        )
    ]
