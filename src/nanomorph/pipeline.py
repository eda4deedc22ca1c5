"""One micrograph in, one calibrated particle table out.

The chain is the reference method's: segment → despeckle → (edge handling and) separation →
measurement. Each step is a function of its own module; this module only wires them together
with one set of parameters, so that the CLI and the workflow run exactly the same analysis.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from . import __version__
from .io.micrograph import Micrograph, MicrographError

if TYPE_CHECKING:
    from .batch import MaskCache

log = logging.getLogger(__name__)

SEPARATION_METHODS = ("uecs", "watershed", "none")
OVERLAP_TESTS = ("sensitive", "paper")
EDGE_MODES = ("drop", "flag")
POLARITIES = ("auto", "dark", "bright")


@dataclass(frozen=True)
class AnalysisParameters:
    """Every knob of the analysis after segmentation; defaults are the reference method's.

    Attributes
    ----------
    min_particle_diameter_nm
        Regions with a smaller equivalent diameter are speckles and removed.
    min_hole_diameter_nm
        Holes inside particles with a smaller equivalent diameter are filled.
    separation
        ``"uecs"`` (ultimate erosion of convex shapes), ``"watershed"`` or ``"none"``.
    overlap_test
        ``"paper"``: a region overlaps when its convexity is below ``convexity_threshold``.
        ``"sensitive"``: also when its solidity is low, which catches the overlapping pairs whose
        perimeter convexity stays above 0.95.
    convexity_threshold
        Convexity (convex-hull perimeter / perimeter) below which a region is non-convex.
    convexity_lower_bound
        Regions less convex than this are excluded as hopeless rather than split.
    min_marker_px, min_marker_diameter_nm
        UECS markers smaller than either limit are discarded.
    edge
        ``"drop"`` removes particles touching the image border; ``"flag"`` keeps them with
        ``touches_edge`` set.
    polarity
        The contrast the user declares for the particles: ``"dark"`` (bright field) or
        ``"bright"`` (HAADF). Then a found particle darker than its surroundings in HAADF, or
        brighter in bright field, is excluded (``wrong_contrast``): the network itself reads
        both polarities and sometimes takes support grain or phase-contrast fringes of the
        other sign for particles. ``"auto"`` (unknown) checks nothing.
    """

    min_particle_diameter_nm: float = 0.5
    min_hole_diameter_nm: float = 0.5
    separation: Literal["uecs", "watershed", "none"] = "uecs"
    overlap_test: Literal["sensitive", "paper"] = "sensitive"
    convexity_threshold: float = 0.95
    convexity_lower_bound: float = 0.5
    min_marker_px: int = 30
    min_marker_diameter_nm: float = 0.5
    edge: Literal["drop", "flag"] = "drop"
    polarity: Literal["auto", "dark", "bright"] = "auto"

    def __post_init__(self) -> None:
        if self.separation not in SEPARATION_METHODS:
            raise ValueError(
                f"separation must be one of {SEPARATION_METHODS}, got {self.separation!r}"
            )
        if self.overlap_test not in OVERLAP_TESTS:
            raise ValueError(
                f"overlap_test must be one of {OVERLAP_TESTS}, got {self.overlap_test!r}"
            )
        if self.edge not in EDGE_MODES:
            raise ValueError(f"edge must be one of {EDGE_MODES}, got {self.edge!r}")
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {POLARITIES}, got {self.polarity!r}")
        for name in ("min_particle_diameter_nm", "min_hole_diameter_nm", "min_marker_diameter_nm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.convexity_lower_bound <= self.convexity_threshold <= 1:
            raise ValueError(
                "need 0 < convexity_lower_bound <= convexity_threshold <= 1, got "
                f"{self.convexity_lower_bound} and {self.convexity_threshold}"
            )
        if self.min_marker_px < 1:
            raise ValueError(f"min_marker_px must be >= 1, got {self.min_marker_px}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AnalysisParameters:
        """Build from a mapping (e.g. the workflow config), ignoring keys that are not knobs."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Segmenter(Protocol):
    """Anything that turns a micrograph into a particle mask."""

    def __call__(self, image: np.ndarray, pixel_size_nm: float) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class ThresholdSegmenter:
    """The classical baseline: smoothing and Otsu's threshold (see :mod:`.segment.threshold`)."""

    polarity: str = "auto"

    def __call__(self, image: np.ndarray, pixel_size_nm: float) -> np.ndarray:
        from .segment.threshold import segment_threshold

        return segment_threshold(image, pixel_size_nm, polarity=self.polarity)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {
            "segmenter": "threshold",
            "method": "gaussian 1 px + Otsu",
            "polarity": self.polarity,
        }


class NetworkSegmenterAdapter:
    """Wrap the trained network so that it has the :class:`Segmenter` call signature."""

    def __init__(
        self,
        model: str | Path | None,
        device: str,
        polarity: str,
        precision: str = "auto",
        test_time_flips: bool = False,
        min_peak_probability: float | None = None,
        flatten_support_px: float | None = None,
        particle_diameter_nm: float | None = None,
        tile_size: int | None = None,
    ) -> None:
        from .segment.model import load_segmenter

        self.network = load_segmenter(
            model,
            device=device,
            precision=precision,
            test_time_flips=test_time_flips,
            min_peak_probability=min_peak_probability,
            flatten_support_px=flatten_support_px,
            particle_diameter_nm=particle_diameter_nm,
            tile_size=tile_size,
        )
        self.polarity = polarity

    def __call__(self, image: np.ndarray, pixel_size_nm: float) -> np.ndarray:
        return np.asarray(self.network.segment(image, pixel_size_nm), dtype=bool)

    def describe(self) -> dict[str, Any]:
        info = {"segmenter": "model"}
        describe = getattr(self.network, "describe", None)
        if callable(describe):
            info.update(describe())
        return info


def make_segmenter(
    kind: str = "model",
    model: str | Path | None = None,
    device: str = "auto",
    polarity: str = "auto",
    precision: str = "auto",
    test_time_flips: bool = False,
    min_peak_probability: float | None = None,
    flatten_support_px: float | None = None,
    particle_diameter_nm: float | None = None,
    tile_size: int | None = None,
) -> Segmenter:
    """Create the segmenter the user asked for.

    Parameters
    ----------
    kind
        ``"model"`` for the trained network, ``"threshold"`` for the classical baseline.
    model
        Model name (a folder under ``resources/models``) or path; ``None`` for the default model.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``; only used by the network.
    polarity
        ``"dark"``, ``"bright"`` or ``"auto"``; only used by the threshold segmenter (the
        network was trained on both polarities).
    precision
        ``"auto"`` (bf16 autocast only where the hardware computes bf16 natively), ``"bf16"`` or
        ``"fp32"``; only used by the network.
    test_time_flips
        Average the network's probabilities over the image and its three flips: four times the
        inference time, particle IoU +0.004 to +0.009 per simulated scenario (model card).
    min_peak_probability
        Override the model's ``min_peak_probability``: network regions whose highest probability
        stays below it are dropped; ``None`` keeps the model's value, 0 keeps every region.
    flatten_support_px
        Override the model's support flattening before the network: variations broader than a
        Gaussian of this many working-grid pixels are scaled down (0 is off, ``None`` keeps the
        model's setting); for small particles on bright, cloudy supports (model card).
    particle_diameter_nm
        The typical particle diameter, if known: images of large particles are block-averaged
        before the network so that it sees them at about the size it finds best, images of
        particles under 10 working-grid pixels enlarged twice (model card, "A declared particle
        diameter"); ``None``: not declared. Only used by the network.
    tile_size
        The network's tile side in pixels (a multiple of 32); ``None`` keeps the model's (512
        for the shipped one, which scores best with it: model card, "Tile size at inference").
        Only used by the network.
    """
    if kind == "threshold":
        return ThresholdSegmenter(polarity=polarity)
    if kind == "model":
        return NetworkSegmenterAdapter(
            model,
            device=device,
            polarity=polarity,
            precision=precision,
            test_time_flips=test_time_flips,
            min_peak_probability=min_peak_probability,
            flatten_support_px=flatten_support_px,
            particle_diameter_nm=particle_diameter_nm,
            tile_size=tile_size,
        )
    raise ValueError(f"segmenter must be 'model' or 'threshold', got {kind!r}")


@dataclass
class AnalysisResult:
    """What :func:`analyze_micrograph` found in one micrograph."""

    semantic_mask: np.ndarray
    separation: Any
    particles: pd.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.separation.labels, dtype=np.uint32)

    def summary_line(self, name: str) -> str:
        d = self.particles["equivalent_diameter_nm"]
        if len(d) == 0:
            return f"{name}: 0 particles"
        sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
        return (
            f"{name}: {len(d)} particles, equivalent diameter {float(d.mean()):.2f} ± {sd:.2f} nm"
        )


def postprocess(
    mask: np.ndarray,
    pixel_size_nm: float,
    params: AnalysisParameters,
    image: np.ndarray | None = None,
):
    """Despeckle a raw particle mask, separate it into particles and check their contrast.

    Parameters
    ----------
    mask, pixel_size_nm, params
        The segmentation, its pixel size in nm and the analysis knobs.
    image : numpy.ndarray, optional
        The micrograph; required when ``params.polarity`` is "dark" or "bright" (the contrast
        check), unused otherwise.

    Returns
    -------
    (semantic_mask, separation)
        The despeckled semantic mask (before edge handling and separation) and the
        :class:`nanomorph.separate.Separation`.
    """
    from .morphology import despeckle
    from .separate import drop_particles, separate

    clean = despeckle(
        np.asarray(mask, dtype=bool),
        pixel_size_nm,
        min_particle_diameter_nm=params.min_particle_diameter_nm,
        min_hole_diameter_nm=params.min_hole_diameter_nm,
    )
    separation = separate(
        clean,
        pixel_size_nm,
        method=params.separation,
        convexity_threshold=params.convexity_threshold,
        convexity_lower_bound=params.convexity_lower_bound,
        min_marker_px=params.min_marker_px,
        min_marker_diameter_nm=params.min_marker_diameter_nm,
        overlap_test=params.overlap_test,
        edge=params.edge,
    )
    if params.polarity != "auto":
        if image is None:
            raise ValueError(
                f"polarity {params.polarity!r} checks each particle's contrast and needs the image"
            )
        separation = drop_particles(
            separation,
            wrong_contrast_particles(image, separation, clean, params.polarity),
            "wrong_contrast",
        )
    return clean, separation


def wrong_contrast_particles(
    image: np.ndarray, separation, clean_mask: np.ndarray, polarity: str
) -> np.ndarray:
    """Indices (0-based) of the particles whose contrast has the sign opposite to `polarity`.

    The contrast is :func:`nanomorph.measure.contrast_to_surroundings` of each particle's pixels
    in the label image against a ring clear of the whole mask; a particle without such a ring
    (enclosed by others) is kept.
    """
    from .measure import contrast_to_surroundings

    image = np.asarray(image)
    if image.shape != np.shape(clean_mask):
        raise ValueError(
            f"the image ({image.shape}) and the mask ({np.shape(clean_mask)}) differ in shape"
        )
    contrast = contrast_to_surroundings(image, separation.labels, clean_mask)
    n = len(separation.particles)
    per_particle = np.full(n, np.nan)
    per_particle[: min(n, len(contrast) - 1)] = contrast[1 : n + 1]
    sign = -1.0 if polarity == "dark" else 1.0
    return np.flatnonzero(sign * per_particle < 0)


def require_calibration(micrograph: Micrograph) -> float:
    """Return the pixel size in nm or refuse: no calibration, no measurement in nm."""
    px = micrograph.pixel_size_nm
    if px is None or not np.isfinite(px) or px <= 0:
        raise MicrographError(
            micrograph.source,
            "no pixel calibration in the file; pass the pixel size with --pixel-size NM "
            "(or pixel_size_nm in the sample sheet)",
        )
    return float(px)


def ingested_image_record(micrograph: Micrograph) -> dict[str, Any]:
    """What the workflow records for an image it has read and found calibrated.

    The record (the image's ``micrograph.json``) keeps no pixels: the steps that need them read
    them again from the source file (:func:`read_recorded_image`), which is cheaper than a copy
    of every image in float32 and needs no disk space for one.  ``pixels_sha256`` lets them check
    that the file still holds the pixels this record describes.
    """
    from .batch import pixels_sha256

    return {
        "name": micrograph.name,
        **micrograph.metadata(),
        "pixels_sha256": pixels_sha256(np.asarray(micrograph.image, dtype=np.float32)),
    }


def read_recorded_image(record: Mapping[str, Any]) -> np.ndarray:
    """The pixels of an image that :func:`ingested_image_record` describes, read again from its
    source file (the same frame, the same pixel size given by the user, if any).

    Returns
    -------
    ndarray
        float32, 2-D: the pixels the record was made from.

    Raises
    ------
    MicrographError
        If the image was skipped, the file cannot be read any more, or it no longer holds the
        same pixels (changed after it was read: run the workflow again to read it anew).
    """
    from .batch import pixels_sha256
    from .io import read_frame

    source = Path(str(record["source"]))
    skipped = skip_reason(record)
    if skipped is not None:
        raise MicrographError(source, f"was skipped when read ({skipped}); it has no pixels")
    frame = record.get("frame")
    given = record["pixel_size_nm"] if record.get("calibration_source") == "user" else None
    image = np.asarray(read_frame(source, frame or 0, pixel_size_nm=given).image, np.float32)
    expected = record.get("pixels_sha256")
    if expected is not None and pixels_sha256(image) != expected:
        where = "" if frame is None else f" (frame {frame})"
        raise MicrographError(
            source,
            f"changed since it was read{where}: its pixels are not the ones recorded; "
            "run the workflow again to read it anew",
        )
    return image


def skipped_image_record(
    name: str, source: str | Path, frame: int | None, reason: str
) -> dict[str, Any]:
    """What the workflow records for an image it could not read or calibrate, when told to skip
    such images (config ``unreadable_images: skip``) instead of stopping.

    The record takes the place of the image's ``micrograph.json``; every later step finds
    ``skipped`` in it, writes empty outputs, and the image's ``metadata.json`` carries the reason.
    """
    if not reason:
        raise ValueError("a skipped image needs the reason it was skipped")
    return {
        "name": name,
        "source": str(source),
        "frame": frame,
        "pixel_size_nm": None,
        "skipped": str(reason),
    }


def skip_reason(record: Mapping[str, Any]) -> str | None:
    """Why an image was skipped (a record of :func:`skipped_image_record`), or ``None``."""
    reason = record.get("skipped")
    return str(reason) if reason else None


def segment_micrograph(
    micrograph: Micrograph, segmenter: Segmenter, mask_cache: MaskCache | None = None
) -> np.ndarray:
    """The segmenter's particle mask of one calibrated micrograph.

    With ``mask_cache`` (opened with this segmenter's ``describe()``), a mask the segmenter made
    before from the same pixels is taken from it instead of segmenting again.
    """
    px = require_calibration(micrograph)
    if mask_cache is not None:
        return mask_cache.segment(segmenter, micrograph.name, micrograph.image, px)[0]
    return segmenter(micrograph.image, px)


def analyze_mask(
    micrograph: Micrograph, mask: np.ndarray, params: AnalysisParameters | None = None
) -> AnalysisResult:
    """Despeckle, separate and measure the particles of a segmented micrograph."""
    from .measure import measure_particles

    params = params or AnalysisParameters()
    px = require_calibration(micrograph)
    semantic, separation = postprocess(mask, px, params, image=micrograph.image)
    table = measure_particles(
        separation.particles, px, image=micrograph.name, frame=micrograph.frame
    )
    return AnalysisResult(semantic_mask=semantic, separation=separation, particles=table)


def analyze_micrograph(
    micrograph: Micrograph,
    segmenter: Segmenter,
    params: AnalysisParameters | None = None,
    mask_cache: MaskCache | None = None,
) -> AnalysisResult:
    """Segment, despeckle, separate and measure one calibrated micrograph.

    With ``mask_cache`` (opened with this segmenter's ``describe()``), a mask the segmenter made
    before from the same pixels is taken from it instead of segmenting again.
    """
    mask = segment_micrograph(micrograph, segmenter, mask_cache)
    return analyze_mask(micrograph, mask, params)


def finish_image(
    out_dir: str | Path,
    micrograph: Micrograph,
    mask: np.ndarray,
    params: AnalysisParameters,
    segmenter_info: Mapping[str, Any],
) -> tuple[str, int]:
    """Analyse a segmented micrograph and write its folder under ``out_dir``.

    Everything ``nanomorph analyze`` does for an image after the network (so that it can run in
    another process while the network segments the next image). Returns the image's one-line
    summary and its number of particles.
    """
    result = analyze_mask(micrograph, mask, params)
    meta = image_metadata(micrograph, result, segmenter_info, params)
    write_image_outputs(out_dir, micrograph, result, meta)
    return result.summary_line(micrograph.name), len(result.particles)


def image_metadata(
    micrograph: Micrograph,
    result: AnalysisResult | None,
    segmenter_info: Mapping[str, Any] | None = None,
    params: AnalysisParameters | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The contents of metadata.json for one image."""
    meta: dict[str, Any] = {
        "software": "nanomorph",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "image": micrograph.name,
        **micrograph.metadata(),
    }
    if segmenter_info is not None:
        meta["segmentation"] = dict(segmenter_info)
    if params is not None:
        meta["parameters"] = params.to_dict()
    if result is not None:
        sep = result.separation
        meta["n_particles"] = int(len(result.particles))
        meta["n_separated"] = (
            int(result.particles["separated"].sum()) if len(result.particles) else 0
        )
        meta["n_excluded"] = int(getattr(sep, "n_excluded", 0))
        meta["excluded_reasons"] = dict(getattr(sep, "excluded_reasons", {}))
    if extra:
        meta.update(extra)
    return meta


def write_image_outputs(
    out_dir: str | Path,
    micrograph: Micrograph,
    result: AnalysisResult,
    metadata: Mapping[str, Any],
) -> Path:
    """Write the per-image folder of the file contract (DESIGN.md) under ``out_dir``.

    ``metadata.json`` is written last, so a folder with it is complete.
    """
    from .outputs import write_json, write_labels_tif, write_mask_png, write_table
    from .plots import save_overlay

    folder = Path(out_dir) / micrograph.name
    folder.mkdir(parents=True, exist_ok=True)
    write_mask_png(folder / "segmentation.png", result.semantic_mask)
    write_labels_tif(folder / "labels.tif", result.labels)
    write_table(result.particles, folder / "particles.parquet", folder / "particles.csv")
    separated = result.particles.loc[result.particles["separated"].astype(bool), "particle_id"]
    save_overlay(
        folder / "overlay.png",
        micrograph.image,
        result.labels,
        particles=result.particles,
        separated_ids=set(int(i) for i in separated),
    )
    write_json(folder / "metadata.json", dict(metadata))
    return folder


def write_combined_outputs(
    out_dir: str | Path, names: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """All particles of the images ``names`` (folders under ``out_dir``) in one table, and their
    summary statistics.

    Writes ``out_dir/particles.parquet``, ``particles.csv`` (the images' tables one after
    another, in the order given), ``particles.xlsx`` (:func:`nanomorph.aggregate.write_xlsx`: all
    particles on the first sheet, then one sheet per image) and ``out_dir/summary.csv``
    (:func:`nanomorph.aggregate.summarize` over all of them as one group: count, mean, SD,
    median, percentiles and a bootstrap interval of the mean per property; ``n_images`` counts
    images without particles too, ``n_excluded`` the particles the separation excluded), and
    histograms of them in ``out_dir/figures/histogram_<property>.png`` (as the workflow draws a
    sample's). Returns the summary.
    """
    from .aggregate import merge_tables, summarize, write_xlsx
    from .outputs import write_table
    from .plots import save_histograms

    folders = [Path(out_dir) / name for name in names]
    merged = merge_tables([folder / "particles.parquet" for folder in folders])
    metadata = [json.loads((folder / "metadata.json").read_text()) for folder in folders]
    excluded = {meta["image"]: int(meta.get("n_excluded", 0)) for meta in metadata}
    summary = summarize(merged, n_boot=n_boot, seed=seed, group_by=None, excluded=excluded)
    summary["n_images"] = len(folders)
    write_table(merged, Path(out_dir) / "particles.parquet", Path(out_dir) / "particles.csv")
    write_xlsx(Path(out_dir) / "particles.xlsx", merged)
    write_table(summary, csv_path=Path(out_dir) / "summary.csv")
    save_histograms(merged, Path(out_dir) / "figures")
    return summary
