"""Write a folder of simulated micrographs with their ground truth (``nanomorph simulate``).

Layout of ``out_dir``::

    images/sim_000000.tif        calibrated image (ImageJ TIFF, or .dm3/.dm4 with fmt="dm3"/"dm4")
    masks/sim_000000.png         uint8 semantic mask, 0 background / 255 particle
    instances/sim_000000.tif     uint32 instance labels (0 background)
    particles/sim_000000.csv     one row per particle (true projected area, diameter, centroid…)
    manifest.csv                 one row per image: files, scenario, modality, pixel size, counts
    params.jsonl                 every randomised setting of every image, one JSON object a line
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

from nanomorph.simulate.micrograph import (
    SimulationParameterError,
    check_settings,
    checked_shape,
    simulate_micrograph,
)
from nanomorph.simulate.scenarios import SCENARIOS, UnknownScenarioError

MANIFEST_NAME = "manifest.csv"
FORMATS = ("tif", "dm3", "dm4", "emd")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_dataset(
    out_dir: str | Path,
    n_images: int,
    seed: int,
    shape: tuple[int, int] = (512, 512),
    scenarios: str | Sequence[str] | None = None,
    fmt: str = "tif",
    pixel_size_nm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Simulate ``n_images`` micrographs and write them with masks, labels and particle tables.

    Image ``i`` depends only on ``(seed, i)`` and the other arguments, so the same call gives
    byte-identical files and a longer run extends a shorter one.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing files of the same names are replaced).
    n_images : int
        Number of micrographs.
    seed : int
        Seed of the whole set.
    shape : tuple of int
        Height and width in pixels.
    scenarios : str or sequence of str, optional
        None: the training mixture (a scenario drawn per image); a name: all images of that
        scenario; several names: taken in turn.
    fmt : {"tif", "dm3", "dm4", "emd"}
        File format of the images: calibrated TIFF, DigitalMicrograph, or Velox EMD (its
        detector recorded as HAADF or BF by the image's modality).
    pixel_size_nm : float, optional
        Fix the pixel size of every image.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image (e.g. to update a progress bar).
    overrides : mapping, optional
        Simulation settings fixed for every image (``modality="haadf"``,
        ``support_platelets=True``, ...: the ``**overrides`` of :func:`simulate_micrograph`);
        checked on a tiny image of every scenario before anything is written.

    Returns
    -------
    Path
        ``out_dir``; its ``manifest.csv`` lists the images.

    Raises
    ------
    SimulationParameterError
        If ``n_images`` is negative, ``fmt`` is not a known format, ``shape`` is not two sizes
        of at least 8 px, or an override names no setting or has a value the simulator cannot
        use.
    UnknownScenarioError
        If a scenario name is not one of `SCENARIOS`.
    """
    if n_images < 0:
        raise SimulationParameterError(f"n_images must be zero or more, got {n_images!r}")
    if fmt not in FORMATS:
        raise SimulationParameterError(f"format {fmt!r} is not one of {FORMATS}")
    shape = checked_shape(shape)
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    for name in scenarios or []:
        if name not in SCENARIOS:
            raise UnknownScenarioError(f"unknown scenario {name!r}; expected one of {SCENARIOS}")
    overrides = dict(overrides or {})
    if overrides:
        try:
            check_settings(overrides, scenarios or SCENARIOS, pixel_size_nm)
        except SimulationParameterError as exc:
            settings = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise SimulationParameterError(f"simulation settings {settings}: {exc}") from None
    from nanomorph.io import write_calibrated_tiff, write_dm, write_velox_emd

    out = Path(out_dir)
    for sub in ("images", "masks", "instances", "particles"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(int(seed)).spawn(n_images)
    rows = []
    param_lines = []
    for i, child in enumerate(seeds):
        scenario = scenarios[i % len(scenarios)] if scenarios else None
        sim = simulate_micrograph(
            child, shape, pixel_size_nm=pixel_size_nm, scenario=scenario, **overrides
        )
        name = f"sim_{i:06d}"
        image = sim.image.astype(sim.params["output_dtype"])
        image_path = out / "images" / f"{name}.{fmt}"
        if fmt == "tif":
            write_calibrated_tiff(image_path, image, sim.pixel_size_nm)
        elif fmt == "emd":
            detector = "HAADF" if sim.modality == "haadf" else "BF"
            write_velox_emd(image_path, image, sim.pixel_size_nm, detector=detector)
        else:
            # nionswift-io's DM writer has no 8-bit type; uint16 keeps the same values
            dm_image = image.astype(np.uint16) if image.dtype == np.uint8 else image
            write_dm(image_path, dm_image, sim.pixel_size_nm, version=int(fmt[-1]))
        Image.fromarray(sim.mask.astype(np.uint8) * 255).save(out / "masks" / f"{name}.png")
        tifffile.imwrite(out / "instances" / f"{name}.tif", sim.instances, compression="zlib")
        sim.particles.to_csv(out / "particles" / f"{name}.csv", index=False)
        rows.append(
            dict(
                name=name,
                image=f"images/{name}.{fmt}",
                mask=f"masks/{name}.png",
                instances=f"instances/{name}.tif",
                particles=f"particles/{name}.csv",
                scenario=sim.scenario,
                modality=sim.modality,
                pixel_size_nm=sim.pixel_size_nm,
                height=shape[0],
                width=shape[1],
                n_particles=len(sim.particles),
                particle_fraction=float(sim.mask.mean()),
                diameter_median_nm=sim.params["diameter_median_nm"],
                dose=sim.params["dose"],
                output_dtype=sim.params["output_dtype"],
                jpeg_quality=sim.params["jpeg_quality"],
            )
        )
        param_lines.append(json.dumps({"name": name, **sim.params}, default=_json_default))
        if progress is not None:
            progress(i + 1, n_images)
    pd.DataFrame(rows).to_csv(out / MANIFEST_NAME, index=False)
    (out / "params.jsonl").write_text("\n".join(param_lines) + ("\n" if param_lines else ""))
    return out
