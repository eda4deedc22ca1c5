"""Per-sample and per-series statistics of particle tables.

Everything here works on the tidy particle table of ``nanomorph.measure`` (one row per particle,
units in the column names) plus the ``sample`` and ``time_s`` columns the workflow adds. Nothing
here reads images or knows about Snakemake.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"sample": "a", "image": "img1", "equivalent_diameter_nm": [2.0, 3.0, 4.0]})
>>> summary = summarize(df, properties=("equivalent_diameter_nm",), n_boot=200)
>>> float(summary.loc[0, "mean"])
3.0
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from nanomorph.outputs import atomic_path

SUMMARY_PROPERTIES: tuple[str, ...] = (
    "equivalent_diameter_nm",
    "feret_min_nm",
    "feret_max_nm",
    "area_nm2",
    "aspect_ratio",
    "circularity",
    "convexity",
    "perimeter_nm",
)
"""Particle properties that :func:`summarize` reports by default."""

PERCENTILES: tuple[int, ...] = (5, 10, 25, 75, 90, 95)
"""Percentiles in the summary, besides the median; columns ``p5`` ... ``p95``."""

COMBINED_SHEET = "all particles"
"""Name of the worksheet with every particle in :func:`write_xlsx`."""

NOTE_SHEET = "note"
"""Name of the last worksheet of :func:`write_xlsx`, there only when the workbook had to leave
something out of the usual layout (per-image sheets, or particles beyond one sheet)."""

EXCEL_MAX_ROWS = 1_048_576
"""Rows of one Excel worksheet, the header row included."""

MAX_IMAGE_SHEETS = 500
"""Beyond this many images :func:`write_xlsx` writes no sheet per image (by default)."""

# Bootstrap resampling is done in blocks of at most this many drawn indices, so that a sample of
# 10^5 particles does not need a 2000 x 10^5 index matrix at once.
_BOOTSTRAP_BLOCK_ELEMENTS = 2_000_000

_XLSX_BLOCK_ROWS = 20_000

# Excel refuses these characters in sheet names and limits names to 31 characters.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_MAX_CHARS = 31


class AggregationError(ValueError):
    """A particle table or argument that cannot be aggregated as asked."""


def unit_of(column: str) -> str:
    """Unit of a particle-table column, read from its name.

    Parameters
    ----------
    column
        A column name such as ``"area_nm2"`` or ``"circularity"``.

    Returns
    -------
    str
        ``"nm"``, ``"nm²"``, ``"nm/s"``, ``"s"``, ``"px"`` or ``""`` for dimensionless quantities.
    """
    for suffix, unit in (
        ("_nm2", "nm²"),
        ("_nm_per_s", "nm/s"),
        ("_nm_per_frame", "nm/frame"),
        ("_nm", "nm"),
        ("_s", "s"),
        ("_px", "px"),
    ):
        if column.endswith(suffix):
            return unit
    return ""


# --------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise AggregationError(f"{path}: particle table not found.")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    raise AggregationError(f"{path}: particle tables must be .parquet or .csv, not '{suffix}'.")


def merge_tables(
    tables: Iterable[pd.DataFrame | str | Path], sample: str | None = None
) -> pd.DataFrame:
    """Concatenate per-image particle tables into one table.

    Parameters
    ----------
    tables
        Particle tables as DataFrames or paths to ``.parquet``/``.csv`` files, in the order the rows
        should appear. Empty tables (images without particles) are allowed.
    sample
        When given, a ``sample`` column with this name is set on every row (overwriting any
        existing one).

    Returns
    -------
    pandas.DataFrame
        All rows with a fresh 0..n-1 index. The columns are the union of the inputs' columns in
        first-seen order.

    Raises
    ------
    AggregationError
        If a path does not exist or is not a parquet/csv file.
    """
    frames = [_read_table(Path(t)) if isinstance(t, str | Path) else t for t in tables]
    columns: list[str] = []
    for frame in frames:
        columns.extend(c for c in frame.columns if c not in columns)
    # Concatenating empty frames makes pandas guess dtypes (and warn); keep them out unless
    # there is nothing else, and restore the full column list afterwards.
    non_empty = [f for f in frames if len(f)]
    if non_empty:
        merged = pd.concat(non_empty, ignore_index=True).reindex(columns=columns)
    else:
        merged = pd.DataFrame(columns=columns)
    if sample is not None:
        merged["sample"] = sample
    return merged


# --------------------------------------------------------------------------------------------
# Summary statistics
# --------------------------------------------------------------------------------------------


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean.

    Parameters
    ----------
    values
        1-D array of finite values.
    n_boot
        Number of bootstrap resamples.
    seed
        Seed of the random generator; the same seed and values give the same interval.
    confidence
        Coverage of the interval, e.g. 0.95.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` for no values, ``(x, x)`` for a single value.

    Raises
    ------
    AggregationError
        If ``n_boot`` < 1 or ``confidence`` is not in (0, 1).
    """
    if n_boot < 1:
        raise AggregationError(f"n_boot must be at least 1, got {n_boot}.")
    if not 0 < confidence < 1:
        raise AggregationError(f"confidence must be between 0 and 1, got {confidence}.")
    values = np.asarray(values, dtype=float).ravel()
    n = values.size
    if n == 0:
        return (float("nan"), float("nan"))
    if n == 1:
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // n)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high))


def _group_keys(group_by: str | Sequence[str] | None) -> list[str]:
    if group_by is None:
        return []
    return [group_by] if isinstance(group_by, str) else list(group_by)


def _iter_groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    if not keys:
        yield {}, df
        return
    for key, part in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(keys, key, strict=True)), part


def _require_columns(table: pd.DataFrame, columns: Iterable[str], table_name: str) -> None:
    """Raise AggregationError naming the first of ``columns`` that ``table`` lacks."""
    for column in columns:
        if column not in table.columns:
            raise AggregationError(f"The {table_name} has no column {column!r}.")


def _count_true(df: pd.DataFrame, column: str) -> int:
    if column not in df:
        return 0
    return int(df[column].fillna(False).astype(bool).sum())


def summarize(
    df: pd.DataFrame,
    properties: Sequence[str] = SUMMARY_PROPERTIES,
    n_boot: int = 2000,
    seed: int = 0,
    group_by: str | Sequence[str] | None = "sample",
    excluded: Mapping[str, int] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Tidy summary statistics of particle properties, one row per group and property.

    Parameters
    ----------
    df
        Particle table (one row per particle). Needs the ``properties`` columns; ``image``,
        ``separated``, ``nonconvex`` and ``touches_edge`` are counted when present.
    properties
        Columns to summarise. Missing values (NaN) are left out of that property's statistics.
    n_boot
        Bootstrap resamples for the interval of the mean.
    seed
        Seed of the bootstrap; each group and property starts from this seed, so a property's
        interval does not depend on which other properties are summarised.
    group_by
        Column(s) to group by (default ``"sample"``), or ``None`` for the whole table as one group.
    excluded
        Particles excluded per image (e.g. hopeless non-convex regions), keyed by the ``image``
        value, as recorded in each image's metadata. Summed per group over the images in the group;
        when the table has one group, every entry counts (also images without measured particles).
    confidence
        Coverage of the bootstrap interval.

    Returns
    -------
    pandas.DataFrame
        Columns: the group keys, ``property``, ``unit``, ``count``, ``mean``, ``sd`` (sample
        standard deviation, ddof=1), ``median``, ``p5``, ``p10``, ``p25``, ``p75``, ``p90``,
        ``p95``, ``ci_low``, ``ci_high`` (percentile bootstrap of the mean), ``n_particles``,
        ``n_images``, ``n_separated``, ``n_nonconvex``, ``n_touches_edge``, ``n_excluded``.

    Raises
    ------
    AggregationError
        If a property or group column is missing from the table.
    """
    keys = _group_keys(group_by)
    missing = [c for c in [*keys, *properties] if c not in df.columns]
    if missing:
        hint = (
            " (pass group_by=None to summarise the whole table)" if set(missing) & set(keys) else ""
        )
        raise AggregationError(f"The particle table has no column {missing[0]!r}{hint}.")
    excluded = dict(excluded or {})
    groups = list(_iter_groups(df, keys))
    rows = []
    for key, part in groups:
        if len(groups) == 1:
            n_excluded = sum(int(v) for v in excluded.values())
        elif "image" in part:
            n_excluded = sum(int(excluded.get(str(im), 0)) for im in part["image"].unique())
        else:
            n_excluded = 0
        counts = {
            "n_particles": len(part),
            "n_images": int(part["image"].nunique()) if "image" in part else 0,
            "n_separated": _count_true(part, "separated"),
            "n_nonconvex": _count_true(part, "nonconvex"),
            "n_touches_edge": _count_true(part, "touches_edge"),
            "n_excluded": n_excluded,
        }
        for prop in properties:
            values = pd.to_numeric(part[prop], errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            stats: dict[str, float] = {"count": values.size}
            if values.size:
                pct = np.percentile(values, [50, *PERCENTILES])
                stats |= {
                    "mean": values.mean(),
                    "sd": values.std(ddof=1) if values.size > 1 else float("nan"),
                    "median": pct[0],
                    **{f"p{p}": v for p, v in zip(PERCENTILES, pct[1:], strict=True)},
                }
            ci_low, ci_high = bootstrap_mean_ci(values, n_boot, seed, confidence)
            rows.append(
                key
                | {"property": prop, "unit": unit_of(prop)}
                | stats
                | {"ci_low": ci_low, "ci_high": ci_high}
                | counts
            )
    columns = [
        *keys,
        "property",
        "unit",
        "count",
        "mean",
        "sd",
        "median",
        *(f"p{p}" for p in PERCENTILES),
        "ci_low",
        "ci_high",
        "n_particles",
        "n_images",
        "n_separated",
        "n_nonconvex",
        "n_touches_edge",
        "n_excluded",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({"count": int})


class LognormalFit(NamedTuple):
    """Maximum-likelihood log-normal fit of a size distribution (location fixed at 0)."""

    median: float
    """Median (= scale = geometric mean), in the unit of the values."""
    sigma_g: float
    """Geometric standard deviation (dimensionless, ≥ 1)."""

    @property
    def shape(self) -> float:
        """``ln(sigma_g)``: the shape parameter ``s`` of ``scipy.stats.lognorm``."""
        return float(np.log(self.sigma_g))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Probability density of the fitted distribution at ``x``."""
        from scipy.stats import lognorm

        return lognorm.pdf(x, self.shape, loc=0, scale=self.median)


def fit_lognormal(values: np.ndarray | Sequence[float]) -> LognormalFit:
    """Fit a two-parameter log-normal distribution (location 0), as used for particle sizes.

    Parameters
    ----------
    values
        Positive sizes (e.g. equivalent diameters in nm); NaNs are ignored.

    Returns
    -------
    LognormalFit
        ``(median, sigma_g)``: the median and the geometric standard deviation.

    Raises
    ------
    AggregationError
        If fewer than two finite values remain, or any value is ≤ 0.
    """
    from scipy.stats import lognorm

    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise AggregationError(f"A log-normal fit needs at least 2 values, got {x.size}.")
    if np.any(x <= 0):
        raise AggregationError(
            f"A log-normal fit needs positive values; the smallest is {x.min():g}."
        )
    shape, _, scale = lognorm.fit(x, floc=0)
    return LognormalFit(median=float(scale), sigma_g=float(np.exp(shape)))


# --------------------------------------------------------------------------------------------
# In-situ series
# --------------------------------------------------------------------------------------------


def series_statistics(
    df: pd.DataFrame,
    frame_col: str = "frame",
    time_col: str = "time_s",
    property: str = "equivalent_diameter_nm",
    frames: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Per-frame particle count and size statistics of an in-situ series.

    Parameters
    ----------
    df
        Particle table of one series with a frame column.
    frame_col
        Column with the frame index.
    time_col
        Column with the frame time in seconds; copied to the output when present.
    property
        The size column to summarise.
    frames
        Every frame of the series; frames without particles then appear with count 0. By default
        only frames with particles appear.

    Returns
    -------
    pandas.DataFrame
        One row per frame, sorted: ``frame``, ``time_s`` (when present), ``count``,
        ``mean_<property>``, ``sd_<property>`` (ddof=1), ``median_<property>``.

    Raises
    ------
    AggregationError
        If the frame or property column is missing, or a frame index is missing.
    """
    _require_columns(df, (frame_col, property), "particle table")
    if df[frame_col].isna().any():
        raise AggregationError(f"Column {frame_col!r} has missing frame indices.")
    grouped = df.groupby(frame_col, sort=True)[property]
    out = pd.DataFrame(
        {
            "count": grouped.count(),
            f"mean_{property}": grouped.mean(),
            f"sd_{property}": grouped.std(ddof=1),
            f"median_{property}": grouped.median(),
        }
    )
    if time_col in df.columns:
        out.insert(0, time_col, df.groupby(frame_col, sort=True)[time_col].first())
    if frames is not None:
        out = out.reindex(sorted(set(frames) | set(out.index)))
        out["count"] = out["count"].fillna(0)
    out["count"] = out["count"].astype(int)
    out.index.name = frame_col
    return out.reset_index()


def track_particles(
    df: pd.DataFrame,
    search_range_nm: float | None = None,
    memory: int = 1,
    frame_col: str = "frame",
    group_by: str | None = None,
) -> pd.DataFrame:
    """Link particles frame to frame into tracks with trackpy.

    Parameters
    ----------
    df
        Particle table of a series: ``centroid_x_nm``, ``centroid_y_nm``, the frame column and
        ``equivalent_diameter_nm`` (for the default search range).
    search_range_nm
        Largest distance in nm a particle may move between linked frames. Default: half the median
        equivalent diameter, so that a particle is not linked to a neighbour it does not overlap.
    memory
        Number of frames a particle may go missing and still keep its track.
    frame_col
        Column with the frame index.
    group_by
        Column whose groups (e.g. ``"sample"``) are linked separately; track ids stay unique.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` in its original row order with an integer ``track_id`` column.

    Raises
    ------
    AggregationError
        If a needed column is missing, a frame index is missing, or the search range is not
        positive.
    """
    import trackpy

    needed = ["centroid_x_nm", "centroid_y_nm", frame_col]
    if search_range_nm is None:
        needed.append("equivalent_diameter_nm")
    if group_by is not None:
        needed.append(group_by)
    _require_columns(df, needed, "particle table")
    out = df.copy()
    if len(out) == 0:
        out["track_id"] = pd.Series(dtype=int)
        return out
    if out[frame_col].isna().any():
        raise AggregationError(f"Column {frame_col!r} has missing frame indices; cannot track.")
    if search_range_nm is None:
        search_range_nm = 0.5 * float(np.nanmedian(out["equivalent_diameter_nm"]))
    if not np.isfinite(search_range_nm) or search_range_nm <= 0:
        raise AggregationError(f"search_range_nm must be positive, got {search_range_nm}.")

    trackpy.quiet()
    out["track_id"] = -1
    next_id = 0
    groups = [(None, out)] if group_by is None else list(out.groupby(group_by, sort=True))
    for _, part in groups:
        frame = pd.DataFrame(
            {
                "x": part["centroid_x_nm"].to_numpy(float),
                "y": part["centroid_y_nm"].to_numpy(float),
                "frame": part[frame_col].to_numpy().astype(int),
                "_row": part.index.to_numpy(),
            }
        )
        with warnings.catch_warnings():
            # trackpy's own use of a deprecated pandas argument; nothing a user can act on.
            warnings.filterwarnings("ignore", message=".*inplace keyword.*")
            linked = trackpy.link(
                frame,
                search_range_nm,
                memory=memory,
                # Shrink the range instead of failing where many particles crowd one subnet.
                adaptive_stop=0.1 * search_range_nm,
                adaptive_step=0.9,
            )
        ids, codes = np.unique(linked["particle"].to_numpy(), return_inverse=True)
        out.loc[linked["_row"].to_numpy(), "track_id"] = codes + next_id
        next_id += len(ids)
    out["track_id"] = out["track_id"].astype(int)
    return out


def track_summary(
    tracks: pd.DataFrame,
    frame_col: str = "frame",
    time_col: str = "time_s",
    property: str = "equivalent_diameter_nm",
) -> pd.DataFrame:
    """Per-track start, end and growth rate of particle size.

    The growth rate is the least-squares slope of the size against frame (and against time when
    the time column is present), which is less noisy than (end − start) / duration.

    Parameters
    ----------
    tracks
        Output of :func:`track_particles`.
    frame_col, time_col
        Frame and time (s) columns.
    property
        The size column whose change is reported.

    Returns
    -------
    pandas.DataFrame
        One row per track: ``track_id``, ``sample`` (when present), ``first_frame``,
        ``last_frame``, ``n_frames``, ``<property>_start``, ``<property>_end`` (e.g.
        ``equivalent_diameter_nm_start``), ``growth_rate_nm_per_frame`` and, with times,
        ``first_time_s``, ``last_time_s``, ``growth_rate_nm_per_s``. Rates are NaN for tracks seen
        in one frame only.

    Raises
    ------
    AggregationError
        If ``track_id``, the frame or the property column is missing.
    """
    _require_columns(tracks, ("track_id", frame_col, property), "track table")
    t = tracks.sort_values(["track_id", frame_col], kind="stable")
    g = t.groupby("track_id", sort=True)
    out = pd.DataFrame(
        {
            "first_frame": g[frame_col].first(),
            "last_frame": g[frame_col].last(),
            "n_frames": g[frame_col].nunique(),
            f"{property}_start": g[property].first(),
            f"{property}_end": g[property].last(),
            "growth_rate_nm_per_frame": _slopes(t, frame_col, property),
        }
    )
    if "sample" in t.columns:
        out.insert(0, "sample", g["sample"].first())
    has_time = time_col in t.columns and t[time_col].notna().any()
    if has_time:
        out["first_time_s"] = g[time_col].first()
        out["last_time_s"] = g[time_col].last()
        out["growth_rate_nm_per_s"] = _slopes(t, time_col, property)
    return out.reset_index()


def _slopes(t: pd.DataFrame, x_col: str, y_col: str) -> pd.Series:
    """Least-squares slope of y against x within each track (NaN without spread in x)."""
    x = pd.to_numeric(t[x_col], errors="coerce").astype(float)
    y = pd.to_numeric(t[y_col], errors="coerce").astype(float)
    keys = t["track_id"]
    dx = x - x.groupby(keys).transform("mean")
    dy = y - y.groupby(keys).transform("mean")
    sxy = (dx * dy).groupby(keys).sum()
    sxx = (dx * dx).groupby(keys).sum()
    return (sxy / sxx.where(sxx > 0)).rename(None)


# --------------------------------------------------------------------------------------------
# Spreadsheet
# --------------------------------------------------------------------------------------------


def evenly_spaced(items: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` of ``items``, spread evenly over them in their order, first and last
    included (every item when there are no more than ``count``).

    Used to choose the images of a sample or the frames of a series that the HTML report shows.

    Examples
    --------
    >>> evenly_spaced(["f0", "f1", "f2", "f3", "f4"], 3)
    ['f0', 'f2', 'f4']
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    items = list(items)
    if count >= len(items):
        return items
    if count == 0:
        return []
    if count == 1:
        return items[:1]
    step = (len(items) - 1) / (count - 1)
    # Half up, not round()'s half to even, which could pick one item twice.
    return [items[int(i * step + 0.5)] for i in range(count)]


def sheet_names(names: Iterable[str], reserved: Iterable[str] = (COMBINED_SHEET,)) -> list[str]:
    """Excel-safe, unique worksheet names for the given image names.

    Forbidden characters ``[]:*?/\\`` become ``_``, names are cut to 31 characters, and clashes
    (Excel compares names without case) get a ``~2``, ``~3`` ... suffix.

    Parameters
    ----------
    names
        Image names, in sheet order.
    reserved
        Names already taken in the workbook.

    Returns
    -------
    list of str
        One sheet name per input name.
    """
    taken = {r.lower() for r in reserved}
    result = []
    for name in names:
        base = _SHEET_FORBIDDEN.sub("_", str(name)).strip("'") or "image"
        candidate = base[:_SHEET_MAX_CHARS]
        k = 2
        while candidate.lower() in taken:
            suffix = f"~{k}"
            candidate = base[: _SHEET_MAX_CHARS - len(suffix)] + suffix
            k += 1
        taken.add(candidate.lower())
        result.append(candidate)
    return result


def write_xlsx(
    path: str | Path,
    per_image: Mapping[str, pd.DataFrame] | pd.DataFrame,
    combined: pd.DataFrame | None = None,
    *,
    max_image_sheets: int = MAX_IMAGE_SHEETS,
    max_rows_per_sheet: int = EXCEL_MAX_ROWS,
) -> Path:
    """Write particle tables to an Excel workbook: one combined sheet and one sheet per image.

    The first sheet, ``"all particles"``, holds every particle; then one sheet per image. Column
    names carry the units (``area_nm2``, ``equivalent_diameter_nm``); missing values are empty
    cells. Rows are streamed to the file (XlsxWriter's constant-memory mode), so memory does not
    grow with the number of cells. Large samples keep within what Excel opens: particles beyond one
    sheet's ``max_rows_per_sheet`` continue on ``"all particles (2)"`` and so on, and a sample of
    more than ``max_image_sheets`` images gets no sheet per image (its combined sheet has the
    ``image`` column); a last sheet, ``"note"``, then says what was done. The file is written
    under a temporary name and renamed, so an interrupted run never leaves a truncated workbook.

    Parameters
    ----------
    path
        The ``.xlsx`` file to write.
    per_image
        ``{image name: table}``, or one table with an ``image`` column that is split by image.
    combined
        The table for the combined sheet. Default: the input table, or the per-image tables
        concatenated.
    max_image_sheets
        Most images that get a sheet of their own.
    max_rows_per_sheet
        Rows of a sheet, header included (Excel's limit by default).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    AggregationError
        If a single table is given without an ``image`` column.
    """
    import xlsxwriter

    if max_rows_per_sheet < 2:
        raise AggregationError(f"max_rows_per_sheet must be at least 2, got {max_rows_per_sheet}")
    if isinstance(per_image, pd.DataFrame):
        if "image" not in per_image.columns:
            raise AggregationError("The particle table has no 'image' column to split sheets by.")
        if combined is None:
            combined = per_image
        tables = {str(k): v for k, v in per_image.groupby("image", sort=False)}
    else:
        tables = {str(k): v for k, v in per_image.items()}
        if combined is None:
            combined = merge_tables(tables.values())

    rows_per_sheet = max_rows_per_sheet - 1
    n_combined = max(1, -(-len(combined) // rows_per_sheet))
    continued = [f"{COMBINED_SHEET} ({k})" for k in range(2, n_combined + 1)]
    combined_names = [COMBINED_SHEET, *continued]
    notes = []
    if n_combined > 1:
        notes.append(
            f"{len(combined)} particles: more than one sheet holds ({rows_per_sheet} rows "
            f"below its header), so they continue on {', '.join(combined_names[1:])}."
        )
    if len(tables) > max_image_sheets:
        notes.append(
            f"{len(tables)} images: more than {max_image_sheets}, so there is no sheet per image; "
            "filter the 'image' column of the particle sheet instead."
        )
        tables = {}
    image_names = sheet_names(tables, reserved=[*combined_names, NOTE_SHEET])

    path = Path(path)
    with atomic_path(path) as tmp:
        # Text stays text: no formula, URL or number is read into an image name.
        options = {
            "constant_memory": True,
            "nan_inf_to_errors": True,  # an infinite ratio shows as #DIV/0!, not a failure
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        }
        book = xlsxwriter.Workbook(str(tmp), options)
        header = book.add_format({"bold": True})
        for index, name in enumerate(combined_names):
            piece = combined.iloc[index * rows_per_sheet : (index + 1) * rows_per_sheet]
            _write_table(book.add_worksheet(name), piece, header)
        for name, table in zip(image_names, tables.values(), strict=True):
            _write_table(book.add_worksheet(name), table, header)
        if notes:
            note = book.add_worksheet(NOTE_SHEET)
            for row, line in enumerate(notes):
                note.write_string(row, 0, line)
        book.close()
    return path


def _write_table(sheet: Any, table: pd.DataFrame, header: Any) -> None:
    """Header and rows of ``table`` in order (what constant memory needs), missing values as
    empty cells, numbers as numbers."""
    sheet.write_row(0, 0, [str(column) for column in table.columns], header)
    sheet.freeze_panes(1, 0)
    # Python objects in blocks: the whole table as objects would take ~40 bytes per cell.
    for start in range(0, len(table), _XLSX_BLOCK_ROWS):
        block = table.iloc[start : start + _XLSX_BLOCK_ROWS]
        values = block.astype(object).where(block.notna(), None)
        for row, record in enumerate(values.itertuples(index=False, name=None), start + 1):
            sheet.write_row(row, 0, record)
