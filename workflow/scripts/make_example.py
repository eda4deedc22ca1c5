"""Regenerate the bundled example micrographs in resources/example/ with nanomorph's simulator.

Run from the repository root: ``python workflow/scripts/make_example.py`` (about 10 s). The files
are seeded, so the same nanomorph version writes the same images. Layout::

    resources/example/catalyst_a/    bright-field TIFFs and one .dm3; isolated and overlapping
    resources/example/catalyst_b/    bright-field TIFFs of larger, overlapping particles
    resources/example/growth.tif     5-frame ImageJ stack, 10 s apart: the same particles growing
    resources/example/truth/         the simulator's true particle tables (not read by the workflow)

All images are calibrated (pixel size in the file), so the sample sheet needs no pixel_size_nm.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile

from nanomorph.io import write_calibrated_tiff, write_dm
from nanomorph.simulate import simulate_micrograph

SHAPE = (320, 320)
SERIES_SHAPE = (256, 256)
SERIES_DIAMETERS_NM = (7.0, 8.0, 9.0, 10.0, 11.0)
# A good exposure and a little organic residue: the examples should show what the method does,
# not the limits of the segmenter (the simulator's defaults also draw very low doses).
# Every detector and background setting that changes the look is fixed here, so that the examples
# stay alike when the simulator's random draws change.
IMAGING = {
    "modality": "bf",
    "dose": 5000.0,
    "residue_fraction": 0.1,
    "illumination_strength": 0.1,
    "row_noise": 0.0,
    "jpeg_quality": None,
    "output_dtype": "float32",
    "clip_fraction": 0.0,
    "support_strength": 0.05,
}
SERIES_FRAME_INTERVAL_S = 10.0


def to_uint8(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """8-bit output spanning the image's grey levels (or a fixed range shared by a series)."""
    low = float(image.min()) if low is None else low
    high = float(image.max()) if high is None else high
    scaled = (image.astype(np.float64) - low) / max(high - low, 1e-12) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def write_truth(out: Path, name: str, sim) -> None:
    (out / "truth").mkdir(parents=True, exist_ok=True)
    sim.particles.to_csv(out / "truth" / f"{name}.csv", index=False)


Spec = tuple[str, int, str, float, float, str]


def make_sample(out: Path, name: str, specs: list[Spec]) -> None:
    """Write one sample folder; spec = (stem, seed, scenario, pixel size nm, diameter nm, fmt)."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem, seed, scenario, pixel_size_nm, diameter_nm, fmt in specs:
        sim = simulate_micrograph(
            seed,
            shape=SHAPE,
            pixel_size_nm=pixel_size_nm,
            scenario=scenario,
            diameter_median_nm=diameter_nm,
            **IMAGING,
        )
        if fmt == "dm3":
            # nionswift-io cannot write 8-bit DM data; 16-bit is what the cameras record anyway.
            write_dm(folder / f"{stem}.dm3", to_uint8(sim.image).astype(np.uint16), pixel_size_nm)
        else:
            write_calibrated_tiff(folder / f"{stem}.tif", to_uint8(sim.image), pixel_size_nm)
        write_truth(out, f"{name}_{stem}", sim)


def make_series(out: Path, seed: int = 11, pixel_size_nm: float = 0.5) -> None:
    """Five frames of the same field with every particle a little larger each frame."""
    images = []
    for index, diameter_nm in enumerate(SERIES_DIAMETERS_NM):
        # Same seed and particle count: the same particles at the same places, only larger.
        sim = simulate_micrograph(
            seed,
            shape=SERIES_SHAPE,
            pixel_size_nm=pixel_size_nm,
            scenario="isolated",
            diameter_median_nm=diameter_nm,
            n_particles=14,
            shape_weights={"sphere": 1.0},
            **{**IMAGING, "residue_fraction": 0.0, "illumination_strength": 0.0},
        )
        images.append(sim.image)
        write_truth(out, f"growth_frame_{index:04d}", sim)
    # One grey scale for all frames, as a camera would record them.
    low, high = min(float(i.min()) for i in images), max(float(i.max()) for i in images)
    frames = [to_uint8(image, low, high) for image in images]
    # ImageJ hyperstack: T axis with a frame interval, calibrated in nm.
    tifffile.imwrite(
        out / "growth.tif",
        np.stack(frames),
        imagej=True,
        resolution=(1.0 / pixel_size_nm, 1.0 / pixel_size_nm),
        metadata={"unit": "nm", "axes": "TYX", "finterval": SERIES_FRAME_INTERVAL_S},
        compression="zlib",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="resources/example", help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    make_sample(
        out,
        "catalyst_a",
        [
            ("a_001", 101, "isolated", 0.5, 8.0, "tif"),
            ("a_002", 102, "overlapping", 0.5, 10.0, "tif"),
            ("a_003", 103, "overlapping", 0.5, 10.0, "dm3"),
        ],
    )
    make_sample(
        out,
        "catalyst_b",
        [
            ("b_001", 201, "overlapping", 0.8, 16.0, "tif"),
            ("b_002", 202, "overlapping", 0.8, 16.0, "tif"),
        ],
    )
    make_series(out)
    for path in out.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # the atomic writers create files readable by the owner only
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
