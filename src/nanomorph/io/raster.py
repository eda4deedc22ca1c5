"""PNG and JPEG images through Pillow. They carry no microscope calibration.

PNG's pHYs chunk and JPEG's dpi are print resolutions, so the pixel size must come from the
user; without it the public readers raise :class:`MicrographError` asking for ``--pixel-size``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._core import Axis, ImageBlock, Refusal, block_from_array

SUFFIXES = (".png", ".jpg", ".jpeg")

_GREY_MODES = {"1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def read_raster_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """The image in a PNG/JPEG file as one uncalibrated block.

    Parameters
    ----------
    path
        A .png, .jpg or .jpeg file.

    Returns
    -------
    list
        One :class:`ImageBlock` (grey, or colour with a trailing channel axis).

    Raises
    ------
    PIL.UnidentifiedImageError
        When Pillow cannot decode the file (wrapped by the public readers).
    """
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
        if mode in _GREY_MODES:
            data = np.asarray(image)
            colour = False
        elif mode == "LA":
            data = np.asarray(image)
            colour = True
        else:  # RGB, RGBA, P (palette), CMYK, ...
            data = np.asarray(image.convert("RGBA" if "A" in mode or mode == "P" else "RGB"))
            colour = True
    if data.dtype == bool:
        data = data.astype(np.uint8)
    return [
        block_from_array(
            data,
            "0",
            Axis(None, "", "y"),
            Axis(None, "", "x"),
            "none",
            colour=colour,
            uncalibrated_reason=f"{path.suffix.lower().lstrip('.').upper()} files carry no pixel "
            "calibration",
            extra_raw={"pil_mode": mode},
        )
    ]
