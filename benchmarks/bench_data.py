"""Simulated micrographs written as calibrated TIFFs, the input several benchmarks time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nanomorph.io import write_calibrated_tiff
from nanomorph.simulate import simulate_micrograph


def write_simulated_tiffs(
    folder: Path, count: int, size: int, pixel_size_nm: float, scenario: str
) -> list[Path]:
    """``folder/img_<i>.tif`` for seeds 0 .. count - 1: float32, ``size``² px, one scenario."""
    paths = []
    for index in range(count):
        sim = simulate_micrograph(
            index, (size, size), pixel_size_nm=pixel_size_nm, scenario=scenario
        )
        paths.append(
            write_calibrated_tiff(
                folder / f"img_{index}.tif", sim.image.astype(np.float32), pixel_size_nm
            )
        )
    return paths
