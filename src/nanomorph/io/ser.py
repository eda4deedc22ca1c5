"""FEI/Thermo Fisher TIA .ser files, read through ncempy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._core import Axis, ImageBlock, Refusal, block_from_array
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
        frames = []
        times: list[float] = []
        calibration = None
        for index in range(n_elements):
            data, meta = ser_file.getDataset(index)
            frames.append(np.asarray(data))
            if calibration is None:
                calibration = meta["Calibration"]
            try:
                times.append(float(ser_file._getTag(index)["Time"]))
            except (KeyError, TypeError, ValueError, OSError):
                times = []
    # SER lists the calibration of the x (column) axis first.
    x_delta = float(calibration[0]["CalibrationDelta"]) if calibration else None
    y_delta = (
        float(calibration[1]["CalibrationDelta"])
        if calibration and len(calibration) > 1
        else x_delta
    )
    array = np.stack(frames) if n_elements > 1 else frames[0]
    frame_times = [t - times[0] for t in times] if len(times) == n_elements > 1 else None
    return [
        block_from_array(
            array,
            "0",
            Axis(y_delta, "m", "y"),
            Axis(x_delta, "m", "x"),
            CALIBRATION_SOURCE,
            frame_times_s=frame_times,
        )
    ]
