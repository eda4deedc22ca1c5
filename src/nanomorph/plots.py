"""Overlays, histograms, series plots and publication figures.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never through
``pyplot``: no display is needed, no global figure state builds up in long workflow runs, and the
module is safe to import on a headless cluster node. Every file is written under a temporary name
and renamed, so an interrupted run never leaves a half-written figure.

The overlay is not a matplotlib figure: it is an RGB array of exactly the micrograph's height and
width, saved with Pillow, so that outlines can be checked pixel for pixel against the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from skimage.segmentation import find_boundaries

from nanomorph.aggregate import fit_lognormal, unit_of
from nanomorph.outputs import atomic_path

# Outline colours (RGB): cyan for particles measured as segmented, orange for particles UECS or
# watershed split off an overlapping region, magenta for regions flagged non-convex but not split.
# Cyan/orange stay distinct for the common colour-vision deficiencies, and cyan shows on both dark
# (bright-field) and bright (HAADF) particles.
COLOUR_PARTICLE = (0, 210, 255)
COLOUR_SEPARATED = (255, 128, 0)
COLOUR_NONCONVEX = (230, 0, 230)

HISTOGRAM_PROPERTIES: tuple[str, ...] = (
    "equivalent_diameter_nm",
    "feret_min_nm",
    "feret_max_nm",
    "circularity",
)
"""Properties drawn by :func:`save_histograms`, each to ``histogram_<property>.png``."""

LABELS: dict[str, str] = {
    "equivalent_diameter_nm": "Equivalent diameter",
    "feret_min_nm": "Minimum Feret diameter",
    "feret_max_nm": "Maximum Feret diameter",
    "area_nm2": "Projected area",
    "aspect_ratio": "Aspect ratio",
    "circularity": "Circularity",
    "convexity": "Convexity",
    "perimeter_nm": "Perimeter",
}

# Publication style: sizes in points for a 3.5 in (single-column) figure.
_PAPER_RC: dict[str, Any] = {
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.0,
    "pdf.fonttype": 42,  # embed TrueType so the text stays editable in Illustrator/Inkscape
}


class PlotError(ValueError):
    """Data that cannot be drawn as asked."""


def axis_label(column: str) -> str:
    """Human-readable axis label with unit for a particle-table column, e.g. ``"Area (nm²)"``."""
    name = LABELS.get(column, column.replace("_", " "))
    unit = unit_of(column)
    if unit and column not in LABELS:
        # Strip the unit suffix from a generic name: "growth rate nm per s" -> "growth rate".
        name = name.rsplit(" nm", 1)[0].rsplit(" px", 1)[0]
    return f"{name} ({unit})" if unit else name


def _save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    return path


_NO_COLUMN_TO_DRAW = "The particle table has no column {!r} to draw."


def _require_columns(table: pd.DataFrame, columns: Iterable[str], message: str) -> None:
    """Raise ``PlotError(message.format(column))`` for the first of ``columns`` not in ``table``."""
    for column in columns:
        if column not in table.columns:
            raise PlotError(message.format(column))


def _finite(values: Iterable[float] | np.ndarray | pd.Series) -> np.ndarray:
    x = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="coerce")
    x = x.to_numpy(dtype=float)
    return x[np.isfinite(x)]


# --------------------------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------------------------


def stretch_to_uint8(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Map an image to uint8 grey levels between two percentiles.

    Parameters
    ----------
    image
        2-D array of any real dtype; NaNs are shown black.
    low, high
        Percentiles mapped to 0 and 255.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.
    """
    img = np.asarray(image, dtype=np.float32)
    # Percentiles of ~10^6 evenly spread pixels are as good as of all 16 M in a 4k image.
    step = max(1, int(np.ceil(np.sqrt(img.size / 1e6))))
    sample = img[::step, ::step] if img.ndim == 2 else img
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return np.zeros(img.shape, np.uint8)
    lo, hi = np.percentile(finite, [low, high])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.clip((np.nan_to_num(img, nan=lo) - lo) * scale, 0, 255)
    return out.astype(np.uint8)


def _outline_width(shape: tuple[int, ...]) -> int:
    # One pixel is invisible when a 4k micrograph is viewed whole; grow the line with the image.
    return max(1, round(min(shape[:2]) / 1024))


def _thicken(boundary: np.ndarray, width: int, inside: np.ndarray | None = None) -> np.ndarray:
    """Widen a 1-pixel outline to ``width`` pixels, outward only where ``inside`` is given.

    Growing outward keeps the line on each particle one pixel wide, so small particles are not
    painted over in a large image.
    """
    if width <= 1:
        return boundary
    from scipy.ndimage import binary_dilation

    thick = binary_dilation(boundary, iterations=width - 1)
    if inside is not None:
        thick &= ~(inside & ~boundary)
    return thick


def _label_image_and_particles(
    labels: Any,
) -> tuple[np.ndarray, list[tuple[int, np.ndarray, tuple[int, int], bool, bool]] | None]:
    """Accept a label array or a Separation-like object (``.labels`` and ``.particles``).

    With a Separation, each particle's own mask is outlined, so both partners of an overlapping
    pair keep their full outline even though the label image draws the overlap to one of them.
    """
    if hasattr(labels, "labels") and hasattr(labels, "particles"):
        parts = [
            (
                i + 1,
                np.asarray(p.mask, bool),
                (int(p.offset[0]), int(p.offset[1])),
                bool(getattr(p, "separated", False)),
                bool(getattr(p, "nonconvex", False)),
            )
            for i, p in enumerate(labels.particles)
        ]
        return np.asarray(labels.labels), parts
    return np.asarray(labels), None


def overlay_rgb(
    image: np.ndarray,
    labels: Any,
    particles: pd.DataFrame | None = None,
    separated_ids: Iterable[int] | None = None,
) -> np.ndarray:
    """Render the micrograph in grey with coloured particle outlines.

    Parameters
    ----------
    image
        2-D micrograph.
    labels
        uint32 instance labels of the same shape (0 = background), or a ``Separation`` from
        ``nanomorph.separate`` (its particles' own masks are outlined).
    particles
        Particle table whose ``particle_id`` values are the label values; its ``separated`` and
        ``nonconvex`` columns choose the outline colour.
    separated_ids
        Label values of separated particles (in addition to those from ``particles``).

    Returns
    -------
    numpy.ndarray
        uint8 RGB array of shape ``image.shape + (3,)``.

    Raises
    ------
    PlotError
        If the image is not 2-D or the labels do not have its shape.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise PlotError(f"The overlay needs a 2-D image, got shape {image.shape}.")
    label_image, parts = _label_image_and_particles(labels)
    if label_image.shape != image.shape:
        raise PlotError(
            f"Labels of shape {label_image.shape} do not match the image shape {image.shape}."
        )
    grey = stretch_to_uint8(image)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    width = _outline_width(image.shape)

    separated = {int(i) for i in separated_ids or ()}
    nonconvex: set[int] = set()
    if particles is not None and len(particles) and "particle_id" in particles:
        ids = particles["particle_id"].to_numpy()
        for column, target in (("separated", separated), ("nonconvex", nonconvex)):
            if column in particles:
                flags = particles[column].fillna(False).to_numpy(bool)
                target.update(int(i) for i in ids[flags])

    def colour(label: int, is_sep: bool, is_nonconvex: bool) -> tuple[int, int, int]:
        if is_sep or label in separated:
            return COLOUR_SEPARATED
        if is_nonconvex or label in nonconvex:
            return COLOUR_NONCONVEX
        return COLOUR_PARTICLE

    if parts is None:
        boundary = _thicken(find_boundaries(label_image, mode="inner"), width, label_image > 0)
        owner = label_image
        if width > 1:
            # A thickened line also covers background pixels; give them the nearest label.
            from scipy.ndimage import grey_dilation

            owner = np.where(
                label_image > 0, label_image, grey_dilation(label_image, size=2 * width - 1)
            )
        # One colour per label value, looked up for all outline pixels at once.
        lut = np.tile(np.array(COLOUR_PARTICLE, np.uint8), (int(label_image.max()) + 1, 1))
        for lab in separated | nonconvex:
            if 0 < lab < len(lut):
                lut[lab] = colour(lab, False, False)
        rgb[boundary] = lut[owner[boundary]]
    else:
        for lab, mask, (r0, c0), is_sep, is_nc in parts:
            padded = np.pad(mask, width)
            edge = _thicken(find_boundaries(padded, mode="inner"), width, padded)
            rows, cols = np.nonzero(edge)
            rows, cols = rows + r0 - width, cols + c0 - width
            keep = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
            rgb[rows[keep], cols[keep]] = colour(lab, is_sep, is_nc)
    return rgb


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def save_overlay(
    path: str | Path,
    image: np.ndarray,
    labels: Any,
    particles: pd.DataFrame | None = None,
    separated_ids: Iterable[int] | None = None,
    title: str | None = None,
    show_ids: bool | None = None,
    max_ids: int = 150,
) -> Path:
    """Write the micrograph with particle outlines as a full-resolution PNG.

    Cyan outlines mark particles, orange ones particles split off an overlapping region, magenta
    ones regions flagged non-convex but left whole. The PNG has exactly the image's height and
    width.

    Parameters
    ----------
    path
        The PNG to write.
    image
        2-D micrograph (any real dtype; shown with a 0.5–99.5 percentile stretch).
    labels
        uint32 instance labels of the same shape, or a ``Separation``.
    particles
        Particle table (``particle_id`` = label value) for colours and id positions.
    separated_ids
        Label values of separated particles, when no table says so.
    title
        Text written in the top-left corner (e.g. the image name).
    show_ids
        Write each particle's id at its centroid. Default: when there are at most ``max_ids``
        particles (beyond that the numbers hide the particles).
    max_ids
        See ``show_ids``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PlotError
        If the image is not 2-D or the labels do not have its shape.
    """
    rgb = overlay_rgb(image, labels, particles, separated_ids)
    pil = Image.fromarray(rgb, mode="RGB")
    draw = ImageDraw.Draw(pil)
    height, width = rgb.shape[:2]
    font_px = max(10, min(height, width) // 60)
    font = _font(font_px)

    label_image, parts = _label_image_and_particles(labels)
    # (label, row, column, equivalent radius in px) of every particle
    positions: list[tuple[int, float, float, float]] = []
    if parts is not None:
        for lab, mask, (r0, c0), _, _ in parts:
            rr, cc = np.nonzero(mask)
            if rr.size:
                positions.append((lab, r0 + rr.mean(), c0 + cc.mean(), np.sqrt(rr.size / np.pi)))
    elif label_image.max() > 0:
        from scipy.ndimage import center_of_mass

        ids = np.unique(label_image[label_image > 0])
        if len(ids) <= max_ids:
            areas = np.bincount(label_image.ravel())[ids]
            centres = center_of_mass(np.ones_like(label_image), label_image, ids)
            positions = [
                (int(i), r, c, np.sqrt(a / np.pi))
                for i, (r, c), a in zip(ids, centres, areas, strict=True)
            ]
    if show_ids is None:
        show_ids = 0 < len(positions) <= max_ids
    if show_ids:
        for lab, r, c, radius in positions:
            # Beside the particle's upper right, not on it, so small particles stay visible.
            offset = 0.75 * radius + 1
            draw.text(
                (c + offset, r - offset),
                str(lab),
                fill=(255, 255, 0),
                font=font,
                anchor="lb",
                stroke_width=max(1, font_px // 10),
                stroke_fill=(0, 0, 0),
            )
    if title:
        draw.text(
            (font_px // 2, font_px // 2),
            title,
            fill=(255, 255, 255),
            font=font,
            stroke_width=max(1, font_px // 10),
            stroke_fill=(0, 0, 0),
        )
    path = Path(path)
    with atomic_path(path) as tmp:
        # Noisy micrographs hardly compress: the fastest zlib level is ~4x quicker, similar size.
        pil.save(tmp, format="PNG", compress_level=1)
    return path


def save_skipped_image_note(path: str | Path, name: str, reason: str, width_px: int = 640) -> Path:
    """Write a grey PNG that says an image was skipped and why, in place of its overlay.

    The workflow writes it for an image it could not read or calibrate when told to skip such
    images (``unreadable_images: skip``), so that every image keeps an overlay to look at.
    """
    font_px = 16
    font = _font(font_px)
    chars_per_line = max(20, int(width_px / (0.6 * font_px)) - 4)
    words, lines, line = f"{name} was skipped: {reason}".split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > chars_per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    height_px = (len(lines) + 2) * int(1.4 * font_px)
    pil = Image.new("RGB", (width_px, height_px), (64, 64, 64))
    draw = ImageDraw.Draw(pil)
    for number, text in enumerate(lines, start=1):
        draw.text((font_px, number * int(1.4 * font_px)), text, fill=(255, 255, 255), font=font)
    path = Path(path)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return path


# The HTML report embeds every image it shows: a 4096² overlay of a noisy micrograph is a 25 MB
# PNG, 2 MB as a JPEG of 2048², which a 4k screen still shows at full size with the outlines
# (drawn 4 px wide at 4096², _outline_width) 2 px wide.
REPORT_IMAGE_MAX_SIDE_PX = 2048
REPORT_IMAGE_JPEG_QUALITY = 90


def save_report_image(
    source: str | Path, path: str | Path, max_side_px: int = REPORT_IMAGE_MAX_SIDE_PX
) -> Path:
    """Write a copy of an overlay PNG for the HTML report: a JPEG, shrunk to ``max_side_px``.

    Images within ``max_side_px`` keep their size; larger ones are resampled (Lanczos) so that
    their longer side is ``max_side_px``, keeping the aspect ratio.

    Parameters
    ----------
    source
        The image (e.g. ``overlay.png``).
    path
        The JPEG to write.
    max_side_px
        Longest side of the copy in pixels.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if max_side_px < 1:
        raise PlotError(f"max_side_px must be at least 1, got {max_side_px}")
    with Image.open(source) as opened:
        image = opened.convert("RGB")
    scale = max_side_px / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="JPEG", quality=REPORT_IMAGE_JPEG_QUALITY)
    return path


# --------------------------------------------------------------------------------------------
# Histograms and comparisons
# --------------------------------------------------------------------------------------------


def histogram(
    ax_or_path: Axes | str | Path,
    values: Iterable[float] | np.ndarray | pd.Series,
    label: str,
    unit: str = "",
    bins: int | str | Sequence[float] = "auto",
    density: bool = False,
    colour: str = "#4C72B0",
) -> Axes | Path:
    """Histogram with N and mean ± SD written on the plot.

    Parameters
    ----------
    ax_or_path
        Axes to draw on, or a file path for a stand-alone 4 × 3 in figure.
    values
        The values; NaNs are ignored.
    label
        Quantity name for the x axis, without unit.
    unit
        Unit for the axis label and the mean ± SD text ("" for dimensionless).
    bins
        Passed to :func:`numpy.histogram_bin_edges`.
    density
        Normalise to a probability density instead of counts.
    colour
        Bar colour.

    Returns
    -------
    matplotlib.axes.Axes or pathlib.Path
        The axes drawn on, or the written file.
    """
    if isinstance(ax_or_path, str | Path):
        fig = Figure(figsize=(4, 3), layout="constrained")
        histogram(fig.add_subplot(), values, label, unit, bins, density, colour)
        return _save_figure(fig, ax_or_path)
    ax = ax_or_path
    x = _finite(values)
    if x.size:
        edges = np.histogram_bin_edges(x, bins=bins)
        ax.hist(x, bins=edges, density=density, color=colour, edgecolor="white", linewidth=0.4)
        mean = x.mean()
        sd = x.std(ddof=1) if x.size > 1 else 0.0
        ax.axvline(mean, color="black", linewidth=0.8, linestyle="--")
        digits = _digits(sd if sd > 0 else abs(mean))
        text = f"N = {x.size}\n{mean:.{digits}f} ± {sd:.{digits}f}" + (f" {unit}" if unit else "")
    else:
        text = "N = 0"
    ax.text(
        0.97,
        0.95,
        text,
        transform=ax.transAxes,
        ha="right",
        va="top",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.9},
    )
    ax.set_xlabel(f"{label} ({unit})" if unit else label)
    ax.set_ylabel("Probability density" + (f" (1/{unit})" if unit else "") if density else "Count")
    return ax


def _digits(scale: float) -> int:
    """Decimals that show two significant digits of ``scale`` (at most 4)."""
    if not np.isfinite(scale) or scale <= 0:
        return 2
    return int(np.clip(1 - np.floor(np.log10(scale)), 0, 4))


def save_histograms(
    df: pd.DataFrame,
    out_dir: str | Path,
    properties: Sequence[str] = HISTOGRAM_PROPERTIES,
    title: str | None = None,
) -> dict[str, Path]:
    """Write one histogram PNG per property: ``out_dir/histogram_<property>.png``.

    Parameters
    ----------
    df
        Particle table.
    out_dir
        Folder for the figures (created when missing).
    properties
        Columns to draw.
    title
        Figure title (e.g. the sample name).

    Returns
    -------
    dict
        ``{property: path}``.

    Raises
    ------
    PlotError
        If a property column is missing.
    """
    out_dir = Path(out_dir)
    paths = {}
    for prop in properties:
        _require_columns(df, [prop], _NO_COLUMN_TO_DRAW)
        fig = Figure(figsize=(4, 3), layout="constrained")
        ax = fig.add_subplot()
        histogram(ax, df[prop], LABELS.get(prop, prop), unit_of(prop))
        if title:
            ax.set_title(title)
        paths[prop] = _save_figure(fig, out_dir / f"histogram_{prop}.png")
    return paths


def save_sample_comparison(
    df: pd.DataFrame,
    path: str | Path,
    property: str = "equivalent_diameter_nm",
    sample_col: str = "sample",
) -> Path:
    """Violin and box plot of one property per sample, with N under each sample name.

    Parameters
    ----------
    df
        Particle table of several samples.
    path
        Figure file (format from the suffix).
    property
        Column to compare.
    sample_col
        Column naming the sample.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PlotError
        If a column is missing.
    """
    _require_columns(df, (property, sample_col), _NO_COLUMN_TO_DRAW)
    samples = list(pd.unique(df[sample_col].astype(str)))
    data = [_finite(df.loc[df[sample_col].astype(str) == s, property]) for s in samples]
    fig = Figure(figsize=(max(3.5, 0.9 * len(samples) + 1.5), 3.2), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(1, len(samples) + 1)
    drawable = [i for i, d in enumerate(data) if d.size >= 2 and np.ptp(d) > 0]
    if drawable:
        parts = ax.violinplot(
            [data[i] for i in drawable], positions[drawable], showextrema=False, widths=0.8
        )
        for body in parts["bodies"]:
            body.set_facecolor("#4C72B0")
            body.set_alpha(0.35)
    has_data = [i for i, d in enumerate(data) if d.size]
    if has_data:
        ax.boxplot(
            [data[i] for i in has_data],
            positions=positions[has_data],
            widths=0.18,
            showfliers=False,
            medianprops={"color": "black"},
        )
    ax.set_xticks(positions, [f"{s}\nN = {d.size}" for s, d in zip(samples, data, strict=True)])
    ax.set_xlim(0.4, len(samples) + 0.6)
    ax.set_ylabel(axis_label(property))
    return _save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# In-situ series
# --------------------------------------------------------------------------------------------


def _series_x(table: pd.DataFrame, frame_col: str, time_col: str) -> tuple[str, str]:
    if time_col in table.columns and table[time_col].notna().all() and len(table):
        return time_col, "Time (s)"
    return frame_col, "Frame"


def save_series_plots(
    series_stats: pd.DataFrame,
    out_dir: str | Path,
    property: str = "equivalent_diameter_nm",
    frame_col: str = "frame",
    time_col: str = "time_s",
) -> dict[str, Path]:
    """Plot mean size ± SD and particle count against time (or frame when times are missing).

    Parameters
    ----------
    series_stats
        Output of :func:`nanomorph.aggregate.series_statistics`.
    out_dir
        Folder for ``series_diameter.png`` and ``series_count.png``.
    property
        The size column summarised in ``series_stats``.
    frame_col, time_col
        Frame and time columns.

    Returns
    -------
    dict
        ``{"diameter": path, "count": path}``.

    Raises
    ------
    PlotError
        If the statistics columns are missing.
    """
    mean_col, sd_col = f"mean_{property}", f"sd_{property}"
    _require_columns(
        series_stats,
        (frame_col, "count", mean_col, sd_col),
        "The series statistics have no column {!r}.",
    )
    out_dir = Path(out_dir)
    x_col, x_label = _series_x(series_stats, frame_col, time_col)
    x = series_stats[x_col].to_numpy(float)

    fig = Figure(figsize=(4.5, 3), layout="constrained")
    ax = fig.add_subplot()
    mean = series_stats[mean_col].to_numpy(float)
    sd = series_stats[sd_col].fillna(0).to_numpy(float)
    ax.fill_between(x, mean - sd, mean + sd, color="#4C72B0", alpha=0.25, linewidth=0, label="± SD")
    ax.plot(x, mean, "o-", color="#4C72B0", markersize=3, label="mean")
    ax.set_xlabel(x_label)
    ax.set_ylabel(axis_label(property))
    ax.legend(frameon=False)
    diameter = _save_figure(fig, out_dir / "series_diameter.png")

    fig = Figure(figsize=(4.5, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x, series_stats["count"].to_numpy(float), "o-", color="#DD8452", markersize=3)
    ax.set_xlabel(x_label)
    ax.set_ylabel("Particles per frame")
    ax.set_ylim(bottom=0)
    count = _save_figure(fig, out_dir / "series_count.png")
    return {"diameter": diameter, "count": count}


def save_tracks_plot(
    tracks: pd.DataFrame,
    path: str | Path,
    property: str = "equivalent_diameter_nm",
    frame_col: str = "frame",
    time_col: str = "time_s",
    min_frames: int = 2,
) -> Path:
    """Plot the size of every tracked particle against time (or frame), one line per track.

    Parameters
    ----------
    tracks
        Output of :func:`nanomorph.aggregate.track_particles`.
    path
        Figure file.
    property
        Size column.
    frame_col, time_col
        Frame and time columns.
    min_frames
        Tracks seen in fewer frames are left out (they carry no growth information).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PlotError
        If ``track_id``, the frame or the property column is missing.
    """
    _require_columns(
        tracks, ("track_id", frame_col, property), "The track table has no column {!r}."
    )
    x_col, x_label = _series_x(tracks, frame_col, time_col)
    fig = Figure(figsize=(4.5, 3), layout="constrained")
    ax = fig.add_subplot()
    lengths = tracks.groupby("track_id")[frame_col].nunique()
    kept = lengths.index[lengths >= min_frames]
    alpha = 0.8 if len(kept) <= 30 else max(0.15, 30 / len(kept))
    for _, track in tracks[tracks["track_id"].isin(kept)].groupby("track_id"):
        track = track.sort_values(frame_col)
        ax.plot(track[x_col], track[property], "-", marker=".", markersize=3, alpha=alpha, lw=0.8)
    ax.set_xlabel(x_label)
    ax.set_ylabel(axis_label(property))
    ax.set_title(f"{len(kept)} tracks over ≥ {min_frames} frames", fontsize=9)
    return _save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# Publication figures
# --------------------------------------------------------------------------------------------


def _paper_paths(path: str | Path, formats: Sequence[str]) -> list[Path]:
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower().lstrip(".") in formats else path
    return [stem.with_name(f"{stem.name}.{fmt}") for fmt in formats]


def save_size_distribution_figure(
    df: pd.DataFrame,
    path: str | Path,
    property: str = "equivalent_diameter_nm",
    fit: str | None = "lognormal",
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 300,
) -> list[Path]:
    """Publication-style size distribution: histogram with a fitted log-normal density.

    3.5 in wide (one journal column), 300 dpi, axes labelled with units; the legend gives N,
    mean ± SD and the fit's median and geometric standard deviation σg.

    Parameters
    ----------
    df
        Particle table.
    path
        Output path; its suffix is replaced by each of ``formats`` (``fig.png`` → ``fig.png`` and
        ``fig.pdf``).
    property
        Column to draw.
    fit
        ``"lognormal"`` or ``None``.
    formats
        File formats to write.
    dpi
        Resolution of raster formats.

    Returns
    -------
    list of pathlib.Path
        The written files.

    Raises
    ------
    PlotError
        If the column is missing or ``fit`` is unknown.
    """
    _require_columns(df, [property], _NO_COLUMN_TO_DRAW)
    if fit not in ("lognormal", None):
        raise PlotError(f"Unknown fit {fit!r}; use 'lognormal' or None.")
    x = _finite(df[property])
    unit = unit_of(property)
    import matplotlib

    with matplotlib.rc_context(_PAPER_RC):
        fig = Figure(figsize=(3.5, 2.6), layout="constrained")
        ax = fig.add_subplot()
        if x.size:
            ax.hist(
                x,
                bins=np.histogram_bin_edges(x, "auto"),
                density=True,
                color="#9DB4D6",
                edgecolor="white",
                linewidth=0.4,
                label=f"N = {x.size}",
            )
            digits = _digits(x.std(ddof=1) if x.size > 1 else abs(x.mean()))
            sd = x.std(ddof=1) if x.size > 1 else 0.0
            ax.plot([], [], " ", label=f"{x.mean():.{digits}f} ± {sd:.{digits}f} {unit}".rstrip())
        if fit == "lognormal" and x.size >= 2 and np.all(x > 0) and np.ptp(x) > 0:
            result = fit_lognormal(x)
            grid = np.linspace(0, x.max() * 1.1, 400)[1:]
            ax.plot(
                grid,
                result.pdf(grid),
                color="#C44E52",
                label=f"log-normal: median {result.median:.{digits}f} {unit}, "
                f"σg {result.sigma_g:.2f}",
            )
        ax.set_xlabel(axis_label(property))
        ax.set_ylabel(f"Probability density (1/{unit})" if unit else "Probability density")
        ax.set_xlim(left=0)
        # Headroom so that the legend does not sit on the distribution's peak.
        ax.set_ylim(0, ax.get_ylim()[1] * 1.35)
        ax.legend(frameon=False, loc="upper right")
        paths = [_save_figure(fig, p, dpi=dpi) for p in _paper_paths(path, formats)]
    return paths


def _count_flag(particles: pd.DataFrame | None, column: str) -> int:
    if particles is None or column not in particles:
        return 0
    return int(particles[column].fillna(False).astype(bool).sum())


def _scale_bar_length_nm(field_nm: float) -> float:
    """A round length (1, 2 or 5 × 10^k nm) of about a fifth of the field of view."""
    target = field_nm / 5
    exponent = np.floor(np.log10(target))
    for mantissa in (5, 2, 1):
        if mantissa * 10**exponent <= target:
            return float(mantissa * 10**exponent)
    return float(10**exponent)


def _downsample_step(shape: tuple[int, ...], max_px: int = 1200) -> int:
    # A 7 in wide figure at 300 dpi shows ~700 px per panel; more only inflates the PDF.
    return max(1, int(np.ceil(max(shape[:2]) / max_px)))


def save_segmentation_panel(
    path: str | Path,
    image: np.ndarray,
    semantic_mask: np.ndarray,
    labels: Any,
    pixel_size_nm: float,
    particles: pd.DataFrame | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 300,
) -> list[Path]:
    """Three-panel figure like the paper's Fig. 1/7: micrograph, segmentation, separated particles.

    a) the micrograph with a scale bar in nm, b) the segmentation (particle pixels yellow),
    c) the measured particles, each in its own colour, separated ones outlined in orange.

    Parameters
    ----------
    path
        Output path; its suffix is replaced by each of ``formats``.
    image
        2-D micrograph.
    semantic_mask
        Boolean segmentation of the same shape.
    labels
        uint32 instance labels of the same shape, or a ``Separation``.
    pixel_size_nm
        Pixel size for the scale bar.
    particles
        Particle table (``particle_id`` = label value) whose ``separated`` column marks the
        separated particles when ``labels`` is a plain array.
    formats
        File formats to write.
    dpi
        Resolution of raster formats.

    Returns
    -------
    list of pathlib.Path
        The written files.

    Raises
    ------
    PlotError
        If shapes differ or the pixel size is not positive.
    """
    from skimage.color import label2rgb

    image = np.asarray(image)
    label_image, parts = _label_image_and_particles(labels)
    mask = np.asarray(semantic_mask, bool)
    if not (image.ndim == 2 and image.shape == mask.shape == label_image.shape):
        raise PlotError(
            f"Image {image.shape}, mask {mask.shape} and labels {label_image.shape} must be "
            "2-D arrays of one shape."
        )
    if not np.isfinite(pixel_size_nm) or pixel_size_nm <= 0:
        raise PlotError(f"pixel_size_nm must be positive, got {pixel_size_nm}.")
    step = _downsample_step(image.shape)
    grey = stretch_to_uint8(image)[::step, ::step]
    small_labels = label_image[::step, ::step]
    small_mask = mask[::step, ::step]

    rng = np.random.default_rng(0)
    n_labels = int(label_image.max())
    # Shuffled bright colours so that neighbouring labels differ; fixed seed for a stable figure.
    palette = rng.uniform(0.25, 1.0, size=(max(n_labels, 1), 3))
    coloured = label2rgb(small_labels, colors=palette, bg_label=0, bg_color=(0, 0, 0))
    coloured = (coloured * 255).astype(np.uint8)
    if parts is not None:
        n_particles = len(parts)
        n_sep = sum(p[3] for p in parts)
    else:
        n_particles = len(np.unique(label_image[label_image > 0]))
        n_sep = _count_flag(particles, "separated")
    if n_sep:
        outline = overlay_rgb(np.zeros(image.shape, np.float32), labels, particles)
        is_sep = np.all(outline == COLOUR_SEPARATED, axis=2)
        # Max-pool rather than stride so that thin outlines survive the downsampling, then widen
        # them to stay visible at print size (~700 px per panel).
        h, w = small_labels.shape
        is_sep = np.pad(is_sep, ((0, h * step - is_sep.shape[0]), (0, w * step - is_sep.shape[1])))
        is_sep = is_sep.reshape(h, step, w, step).any(axis=(1, 3))
        is_sep = _thicken(is_sep, max(1, round(max(h, w) / 300)))
        coloured[is_sep] = COLOUR_SEPARATED

    height_nm = image.shape[0] * pixel_size_nm
    width_nm = image.shape[1] * pixel_size_nm
    extent = (0, width_nm, height_nm, 0)
    import matplotlib
    from matplotlib.colors import ListedColormap

    with matplotlib.rc_context(_PAPER_RC):
        # Panel height follows the image's aspect ratio; the rest is room for the titles.
        panel_height = (7.2 / 3) * image.shape[0] / image.shape[1]
        fig = Figure(figsize=(7.2, panel_height + 0.35), layout="constrained")
        axes = fig.subplots(1, 3)
        axes[0].imshow(grey, cmap="gray", extent=extent, interpolation="nearest")
        axes[1].imshow(
            small_mask,
            cmap=ListedColormap(["#26357A", "#F5D90A"]),
            vmin=0,
            vmax=1,
            extent=extent,
            interpolation="nearest",
        )
        axes[2].imshow(coloured, extent=extent, interpolation="nearest")
        titles = (
            "a  micrograph",
            "b  segmentation",
            f"c  {n_particles} particles" + (f", {n_sep} separated" if n_sep else ""),
        )
        bar_nm = _scale_bar_length_nm(width_nm)
        for ax, title in zip(axes, titles, strict=True):
            ax.set_title(title, loc="left", fontweight="bold")
            ax.set_axis_off()
        x0 = width_nm * 0.05
        y0 = height_nm * 0.93
        axes[0].plot(
            [x0, x0 + bar_nm], [y0, y0], color="white", linewidth=2.5, solid_capstyle="butt"
        )
        axes[0].text(
            x0 + bar_nm / 2,
            y0 - height_nm * 0.03,
            f"{bar_nm:g} nm",
            color="white",
            ha="center",
            va="bottom",
            fontweight="bold",
        )
        paths = [_save_figure(fig, p, dpi=dpi) for p in _paper_paths(path, formats)]
    return paths
