"""Tests of nanomorph.aggregate on synthetic particle tables with known statistics."""

from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

from nanomorph.aggregate import (
    COMBINED_SHEET,
    NOTE_SHEET,
    AggregationError,
    bootstrap_mean_ci,
    evenly_spaced,
    fit_lognormal,
    merge_tables,
    series_statistics,
    sheet_names,
    summarize,
    track_particles,
    track_summary,
    write_xlsx,
)


def particle_table(n: int, image: str = "img", seed: int = 0, frame: int | None = None):
    """A synthetic particle table with the DESIGN.md columns and log-normal diameters."""
    rng = np.random.default_rng(seed)
    d = rng.lognormal(np.log(3.0), 0.25, n)
    return pd.DataFrame(
        {
            "image": image,
            "frame": frame,
            "particle_id": np.arange(1, n + 1),
            "area_nm2": np.pi * d**2 / 4,
            "equivalent_diameter_nm": d,
            "feret_min_nm": 0.95 * d,
            "feret_max_nm": 1.1 * d,
            "aspect_ratio": np.full(n, 1.1 / 0.95),
            "perimeter_nm": np.pi * d,
            "circularity": rng.uniform(0.8, 1.0, n),
            "convexity": rng.uniform(0.9, 1.0, n),
            "centroid_x_nm": rng.uniform(0, 100, n),
            "centroid_y_nm": rng.uniform(0, 100, n),
            "separated": np.arange(n) % 5 == 0,
            "nonconvex": np.arange(n) % 7 == 0,
            "touches_edge": False,
        }
    )


def test_summary_matches_numpy():
    df = particle_table(300)
    summary = summarize(df, group_by=None, n_boot=500)
    row = summary.set_index("property").loc["equivalent_diameter_nm"]
    d = df["equivalent_diameter_nm"].to_numpy()
    assert row["count"] == 300
    assert row["unit"] == "nm"
    assert row["mean"] == pytest.approx(d.mean())
    assert row["sd"] == pytest.approx(d.std(ddof=1))
    assert row["median"] == pytest.approx(np.median(d))
    for p in (5, 10, 25, 75, 90, 95):
        assert row[f"p{p}"] == pytest.approx(np.percentile(d, p))
    assert row["ci_low"] < d.mean() < row["ci_high"]
    # The bootstrap interval of the mean is about ±1.96 standard errors.
    half_width = (row["ci_high"] - row["ci_low"]) / 2
    assert half_width == pytest.approx(1.96 * d.std(ddof=1) / np.sqrt(d.size), rel=0.15)
    assert row["n_separated"] == 60
    assert row["n_nonconvex"] == 43
    assert row["n_images"] == 1
    assert summary.set_index("property").loc["area_nm2", "unit"] == "nm²"
    assert summary.set_index("property").loc["circularity", "unit"] == ""
    assert len(summary) == 8


def test_bootstrap_interval_narrows_with_more_particles():
    small = particle_table(50, seed=1)["equivalent_diameter_nm"].to_numpy()
    large = particle_table(5000, seed=1)["equivalent_diameter_nm"].to_numpy()
    lo_s, hi_s = bootstrap_mean_ci(small)
    lo_l, hi_l = bootstrap_mean_ci(large)
    assert lo_s < small.mean() < hi_s
    assert lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < 0.2 * (hi_s - lo_s)


def test_bootstrap_is_seeded():
    x = particle_table(100)["equivalent_diameter_nm"].to_numpy()
    assert bootstrap_mean_ci(x, seed=3) == bootstrap_mean_ci(x, seed=3)
    assert bootstrap_mean_ci(x, seed=3) != bootstrap_mean_ci(x, seed=4)
    df = particle_table(100)
    pd.testing.assert_frame_equal(
        summarize(df, group_by=None, seed=7), summarize(df, group_by=None, seed=7)
    )


def test_bootstrap_edge_cases():
    assert np.isnan(bootstrap_mean_ci(np.array([]))).all()
    assert bootstrap_mean_ci(np.array([2.5])) == (2.5, 2.5)
    with pytest.raises(AggregationError, match="n_boot"):
        bootstrap_mean_ci(np.ones(3), n_boot=0)


def test_summary_groups_and_excluded_counts():
    a = merge_tables([particle_table(20, "a1"), particle_table(30, "a2", seed=2)], sample="A")
    b = merge_tables([particle_table(10, "b1", seed=3)], sample="B")
    df = merge_tables([a, b])
    summary = summarize(
        df, properties=("equivalent_diameter_nm",), excluded={"a1": 2, "a2": 1, "b1": 4}
    )
    by_sample = summary.set_index("sample")
    assert list(by_sample.index) == ["A", "B"]
    assert by_sample.loc["A", "count"] == 50
    assert by_sample.loc["B", "count"] == 10
    assert by_sample.loc["A", "n_images"] == 2
    assert by_sample.loc["A", "n_excluded"] == 3
    assert by_sample.loc["B", "n_excluded"] == 4
    assert by_sample.loc["B", "mean"] == pytest.approx(b["equivalent_diameter_nm"].mean())


def test_summary_ignores_missing_values_and_names_missing_columns():
    df = particle_table(10)
    df.loc[0, "circularity"] = np.nan
    summary = summarize(df, group_by=None).set_index("property")
    assert summary.loc["circularity", "count"] == 9
    assert summary.loc["equivalent_diameter_nm", "count"] == 10
    with pytest.raises(AggregationError, match="'sample'.*group_by=None"):
        summarize(df)
    with pytest.raises(AggregationError, match="'volume_nm3'"):
        summarize(df, properties=("volume_nm3",), group_by=None)


def test_summary_of_empty_table():
    summary = summarize(particle_table(0), group_by=None, n_boot=10)
    assert (summary["count"] == 0).all()
    assert summary["mean"].isna().all()


def test_merge_tables_reads_files_and_sets_sample(tmp_path):
    t1, t2 = particle_table(4, "x"), particle_table(3, "y")
    t1.to_parquet(tmp_path / "a.parquet")
    t2.to_csv(tmp_path / "b.csv", index=False)
    merged = merge_tables([tmp_path / "a.parquet", tmp_path / "b.csv", t1.iloc[:0]], sample="S")
    assert len(merged) == 7
    assert list(merged.index) == list(range(7))
    assert (merged["sample"] == "S").all()
    assert list(merged["image"]) == ["x"] * 4 + ["y"] * 3
    with pytest.raises(AggregationError, match="missing.parquet"):
        merge_tables([tmp_path / "missing.parquet"])


def test_merge_of_only_empty_tables_keeps_columns():
    merged = merge_tables([particle_table(0)])
    assert len(merged) == 0
    assert "equivalent_diameter_nm" in merged.columns


def test_fit_lognormal_recovers_parameters():
    rng = np.random.default_rng(5)
    x = rng.lognormal(np.log(2.5), np.log(1.3), 5000)
    fit = fit_lognormal(x)
    assert fit.median == pytest.approx(np.exp(np.log(x).mean()), rel=1e-6)
    assert fit.sigma_g == pytest.approx(np.exp(np.log(x).std()), rel=1e-6)
    assert fit.median == pytest.approx(2.5, rel=0.02)
    assert fit.sigma_g == pytest.approx(1.3, rel=0.02)
    with pytest.raises(AggregationError, match="positive"):
        fit_lognormal([1.0, -2.0, 3.0])


def series_table(n_particles: int = 6, n_frames: int = 5, growth_nm_per_frame: float = 0.2):
    """Particles on a grid that drift a little and grow linearly, listed in shuffled order."""
    rng = np.random.default_rng(0)
    rows = []
    for frame in range(n_frames):
        for k in range(n_particles):
            d0 = 2.0 + 0.3 * k
            rows.append(
                {
                    "image": f"frame_{frame:04d}",
                    "frame": frame,
                    "time_s": 0.5 * frame,
                    "centroid_x_nm": 10.0 * (k % 3) + 0.3 * frame + rng.normal(0, 0.05),
                    "centroid_y_nm": 10.0 * (k // 3) - 0.2 * frame + rng.normal(0, 0.05),
                    "equivalent_diameter_nm": d0 + growth_nm_per_frame * frame,
                    "true_id": k,
                }
            )
    return pd.DataFrame(rows).sample(frac=1, random_state=1).reset_index(drop=True)


def test_series_statistics_per_frame():
    df = series_table()
    stats = series_statistics(df, frames=range(7))
    assert list(stats["frame"]) == list(range(7))
    assert list(stats["count"]) == [6] * 5 + [0, 0]
    for frame in range(5):
        d = df.loc[df["frame"] == frame, "equivalent_diameter_nm"]
        row = stats.loc[stats["frame"] == frame].iloc[0]
        assert row["mean_equivalent_diameter_nm"] == pytest.approx(d.mean())
        assert row["sd_equivalent_diameter_nm"] == pytest.approx(d.std(ddof=1))
        assert row["median_equivalent_diameter_nm"] == pytest.approx(d.median())
        assert row["time_s"] == pytest.approx(0.5 * frame)
    assert np.isnan(stats.loc[6, "mean_equivalent_diameter_nm"])


def test_tracking_links_each_particle_into_one_track_with_its_growth_rate():
    df = series_table(growth_nm_per_frame=0.2)
    tracks = track_particles(df)
    assert list(tracks.index) == list(df.index)
    # one track per true particle, and each track holds one true particle
    assert tracks.groupby("true_id")["track_id"].nunique().eq(1).all()
    assert tracks["track_id"].nunique() == 6
    summary = track_summary(tracks)
    assert len(summary) == 6
    assert (summary["n_frames"] == 5).all()
    assert (summary["first_frame"] == 0).all() and (summary["last_frame"] == 4).all()
    np.testing.assert_allclose(summary["growth_rate_nm_per_frame"], 0.2, atol=1e-9)
    np.testing.assert_allclose(summary["growth_rate_nm_per_s"], 0.4, atol=1e-9)
    np.testing.assert_allclose(
        summary["equivalent_diameter_nm_end"] - summary["equivalent_diameter_nm_start"], 0.8
    )


def test_tracking_needs_frames():
    df = series_table()
    df.loc[0, "frame"] = np.nan
    with pytest.raises(AggregationError, match="frame"):
        track_particles(df)
    with pytest.raises(AggregationError, match="search_range_nm"):
        track_particles(series_table(), search_range_nm=0)


def test_tracking_groups_keep_ids_unique():
    a = series_table().assign(sample="A")
    b = series_table().assign(sample="B")
    tracks = track_particles(pd.concat([a, b], ignore_index=True), group_by="sample")
    assert tracks["track_id"].nunique() == 12
    assert tracks.groupby("track_id")["sample"].nunique().eq(1).all()


def test_sheet_names_are_valid_and_unique():
    names = sheet_names(
        ["a" * 40, "a" * 40, "x[1]:y*z?/w\\", "All Particles", "frame_0001", "FRAME_0001"]
    )
    assert all(len(n) <= 31 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert not any(set(n) & set("[]:*?/\\") for n in names)
    assert names[3].lower() != COMBINED_SHEET
    assert names[4] == "frame_0001"


def test_write_xlsx_has_one_sheet_per_image_and_a_combined_sheet(tmp_path):
    df = merge_tables(
        [particle_table(3, "first image"), particle_table(2, "second/image:with*chars")]
    )
    path = write_xlsx(tmp_path / "particles.xlsx", df)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == [COMBINED_SHEET, "first image", "second_image_with_chars"]
    combined = list(book[COMBINED_SHEET].values)
    assert combined[0][: len(df.columns)] == tuple(df.columns)
    assert "equivalent_diameter_nm" in combined[0]
    assert len(combined) == 1 + 5
    assert len(list(book["first image"].values)) == 1 + 3
    book.close()
    assert not [p for p in tmp_path.iterdir() if p.name != "particles.xlsx"]


def test_write_xlsx_from_mapping(tmp_path):
    tables = {"img1": particle_table(2, "img1"), "img2": particle_table(0, "img2")}
    path = write_xlsx(tmp_path / "p.xlsx", tables)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == [COMBINED_SHEET, "img1", "img2"]
    assert len(list(book[COMBINED_SHEET].values)) == 3
    assert len(list(book["img2"].values)) == 1  # header only
    book.close()


def test_write_xlsx_keeps_types_and_leaves_missing_values_empty(tmp_path):
    table = pd.DataFrame(
        {
            "image": ["a", "a", "=SUM(A1)"],
            "particle_id": [1, 2, 1],
            "equivalent_diameter_nm": [2.5, np.nan, np.inf],
            "separated": [True, False, True],
        }
    )
    path = write_xlsx(tmp_path / "p.xlsx", table)
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book[COMBINED_SHEET].values)
    assert rows[0] == ("image", "particle_id", "equivalent_diameter_nm", "separated")
    assert rows[1] == ("a", 1, 2.5, True)
    assert rows[2] == ("a", 2, None, False)
    name_cell, _, infinite_cell, _ = next(book[COMBINED_SHEET].iter_rows(min_row=4))
    assert (name_cell.value, name_cell.data_type) == ("=SUM(A1)", "s")  # text stays text
    assert infinite_cell.value == "=1/0"  # shown as #DIV/0!
    assert book.sheetnames == [COMBINED_SHEET, "a", "=SUM(A1)"]
    book.close()


def test_write_xlsx_continues_particles_beyond_a_sheet_on_further_sheets(tmp_path):
    df = merge_tables([particle_table(4, "first"), particle_table(3, "second")])
    path = write_xlsx(tmp_path / "p.xlsx", df, max_rows_per_sheet=4)  # 3 particles a sheet
    book = openpyxl.load_workbook(path, read_only=True)
    pieces = [COMBINED_SHEET, f"{COMBINED_SHEET} (2)", f"{COMBINED_SHEET} (3)"]
    assert book.sheetnames == [*pieces, "first", "second", NOTE_SHEET]
    rows = [row for name in pieces for row in list(book[name].values)[1:]]
    assert [row[list(df.columns).index("particle_id")] for row in rows] == list(df["particle_id"])
    (note,) = list(book[NOTE_SHEET].values)
    assert "7 particles" in note[0] and f"{COMBINED_SHEET} (3)" in note[0]
    book.close()


def test_write_xlsx_of_many_images_has_no_sheet_per_image_and_says_so(tmp_path):
    df = merge_tables([particle_table(2, f"img{i}") for i in range(4)])
    path = write_xlsx(tmp_path / "p.xlsx", df, max_image_sheets=3)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == [COMBINED_SHEET, NOTE_SHEET]
    assert len(list(book[COMBINED_SHEET].values)) == 1 + 8
    assert "4 images: more than 3" in list(book[NOTE_SHEET].values)[0][0]
    book.close()


@pytest.mark.parametrize(
    ("n_items", "count", "expected"),
    [
        (5, 3, [0, 2, 4]),
        (5, 5, [0, 1, 2, 3, 4]),
        (3, 20, [0, 1, 2]),
        (10, 4, [0, 3, 6, 9]),
        (7, 1, [0]),
        (7, 0, []),
        (0, 3, []),
    ],
)
def test_evenly_spaced_keeps_order_ends_and_count(n_items, count, expected):
    assert evenly_spaced(list(range(n_items)), count) == expected


def test_evenly_spaced_never_picks_an_item_twice():
    for n_items in range(1, 60):
        for count in range(n_items + 1):
            chosen = evenly_spaced(list(range(n_items)), count)
            assert len(chosen) == len(set(chosen)) == count
            assert chosen == sorted(chosen)
