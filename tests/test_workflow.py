"""The Snakemake workflow: lint, dry run, sheet validation, and an end-to-end run on .test/.

The end-to-end run (threshold segmenter, 3 micrographs + a 5-frame series) takes about a minute
on two cores; it runs once per session and the output checks share it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TEST_CONFIG = REPO / ".test" / "config"

pytestmark = pytest.mark.skipif(
    shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists(),
    reason="snakemake is not installed (pip install 'nanomorph[workflow]')",
)


def run_snakemake(*args: str, cwd: Path = REPO, check: bool = True, timeout: float = 300):
    result = subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def default_model_available() -> bool:
    try:
        from nanomorph.segment.model import find_model_folder

        find_model_folder(None)
    except (ImportError, ValueError):
        return False
    return True


def make_workdir(root: Path, segmenter: str = "threshold") -> Path:
    """A copy of .test/config whose sample paths point at the bundled example data."""
    (root / "config").mkdir(parents=True)
    config = (TEST_CONFIG / "config.yaml").read_text()
    config = config.replace("segmenter: threshold", f"segmenter: {segmenter}")
    (root / "config" / "config.yaml").write_text(config)
    sheet = (TEST_CONFIG / "samples.tsv").read_text()
    sheet = sheet.replace("../resources/", f"{REPO}/resources/")
    (root / "config" / "samples.tsv").write_text(sheet)
    return root


def run_workflow(workdir: Path, *extra: str, timeout: float = 300, check: bool = True):
    return run_snakemake(
        "--directory", str(workdir), "--cores", "2", *extra, timeout=timeout, check=check
    )


def read_tables(results: Path) -> dict[str, pd.DataFrame]:
    """Every table the run produced, keyed by path relative to results/."""
    tables = {}
    for path in sorted(results.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(results).parts):
            # Not outputs: the workflow's caches, and the hidden temporary file of a write that
            # a hard kill interrupted (.particles.<random>.tmp.parquet, never renamed).
            continue
        if path.suffix == ".parquet":
            tables[str(path.relative_to(results))] = pd.read_parquet(path)
        elif path.suffix == ".csv" and "benchmarks" not in path.parts:
            tables[str(path.relative_to(results))] = pd.read_csv(path)
    return tables


def assert_same_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = make_workdir(tmp_path_factory.mktemp("e2e"))
    run = run_workflow(workdir)
    # Snakemake's own account of the jobs (their resources among it), beside the results.
    (workdir / "snakemake_output.txt").write_text(run.stdout + run.stderr)
    return workdir / "results"


# ------------------------------------------------------------------------------ static checks
def test_lint_is_clean():
    result = run_snakemake("--lint", "--config", "segmenter=threshold")
    assert "good condition" in result.stdout + result.stderr


def test_dry_run_on_default_config_lists_every_stage(tmp_path):
    # An empty results folder: a finished example run in the checkout would leave nothing to do.
    config = [f"results={tmp_path / 'results'}"]
    if not default_model_available():
        config.append("segmenter=threshold")
    result = run_snakemake("-n", "--quiet", "rules", "--config", *config)
    for rule in (
        "ingest",
        "segment",
        "postprocess",
        "measure",
        "overlay",
        "merge_sample",
        "summarize_sample",
        "sample_xlsx",
        "histograms",
        "series",
        "tracks",
        "comparison",
        "combined_summary",
    ):
        assert rule in result.stdout, rule


def test_samples_are_segmented_in_batches_each_image_reading_its_own(tmp_path):
    results = tmp_path / "results"
    config = ["segmenter=threshold", "segment_batch_size=2", f"results={results}"]
    output = run_snakemake("-n", "--config", *config).stdout
    chunks = {}  # (sample, chunk) -> the images its segmentation job reads
    for block in output.split("rule segment:")[1:]:
        inputs = re.search(r"input: (.*)", block).group(1).split(", ")
        sample, chunk = re.search(r"wildcards: sample=(\w+), chunk=(\d+)", block).groups()
        chunks[sample, int(chunk)] = {
            Path(f).parent.relative_to(results / sample / "images").as_posix()
            for f in inputs
            if f.endswith("micrograph.json")
        }
    # The default sheet: 3 + 2 images and a 5-frame series, in acquisition order.
    assert chunks == {
        ("catalyst_a", 0): {"a_001", "a_002"},
        ("catalyst_a", 1): {"a_003"},
        ("catalyst_b", 0): {"b_001", "b_002"},
        ("growth", 0): {"growth/frame_0000", "growth/frame_0001"},
        ("growth", 1): {"growth/frame_0002", "growth/frame_0003"},
        ("growth", 2): {"growth/frame_0004"},
    }
    n_postprocess = 0
    for block in output.split("rule postprocess:")[1:]:
        inputs = re.search(r"input: (.*)", block).group(1).split(", ")
        chunk_dir = Path(next(f for f in inputs if "/segment/chunk_" in f))
        image = Path(next(f for f in inputs if f.endswith("micrograph.json"))).parent
        sample = chunk_dir.parent.parent.name
        chunk = int(chunk_dir.name.removeprefix("chunk_"))
        assert image.relative_to(results / sample / "images").as_posix() in chunks[sample, chunk]
        n_postprocess += 1
    assert n_postprocess == 10
    # Images are read batch by batch, and every later step goes before further reading, so that
    # a batch is segmented as soon as it is read.
    priorities = {}  # (rule, image or chunk) -> priority (0 is not printed)
    for block in output.split("\n\n"):
        job = re.search(r"^(?:local)?rule (\w+):", block.strip(), re.M)
        wildcards = re.search(r"wildcards: sample=\w+, (?:image|chunk)=(\S+)", block)
        if job and wildcards:
            found = re.search(r"priority: (-?\d+)", block)
            priorities[job.group(1), wildcards.group(1)] = int(found.group(1)) if found else 0
    assert priorities["ingest", "a_001"] == priorities["ingest", "a_002"] == 0
    assert priorities["ingest", "a_003"] == -1
    assert priorities["ingest", "growth/frame_0004"] == -2
    for rule in ("segment", "postprocess", "measure", "overlay"):
        values = [v for (r, _), v in priorities.items() if r == rule]
        assert values and min(values) > 0, rule


def test_figures_target_dry_run():
    result = run_snakemake("-n", "figures", "--config", "segmenter=threshold")
    assert "size_distribution_figure" in result.stdout
    assert "segmentation_panel" in result.stdout


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("bad name\tresources/example/catalyst_a\t\tfalse", "row 3 (sample 'bad name')"),
        ("neg\tresources/example/catalyst_a\t-1\tfalse", "row 3 (sample 'neg')"),
        ("flag\tresources/example/catalyst_a\t\tmaybe", "row 3 (sample 'flag')"),
        ("ghost\tresources/example/nothing_here/*.tif\t\tfalse", "sample 'ghost'"),
        ("pol\tresources/example/catalyst_a\t\tfalse\tgrey", "row 3 (sample 'pol')"),
    ],
)
def test_bad_sheet_row_is_named(tmp_path, row, expected):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "sample\tpath\tpixel_size_nm\tseries\tpolarity\n"
        "good\tresources/example/catalyst_a\t\tfalse\tdark\n" + row + "\n"
    )
    result = run_snakemake("-n", "--config", "segmenter=threshold", f"samples={sheet}", check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_misspelt_config_key_is_named():
    result = run_snakemake("-n", "--config", "segmentr=threshold", check=False)
    assert result.returncode != 0
    assert "segmentr" in result.stdout + result.stderr


def test_test_time_flips_must_be_true_or_false():
    result = run_snakemake(
        "-n", "--config", "segmenter=threshold", "test_time_flips=often", check=False
    )
    assert result.returncode != 0
    assert "test_time_flips" in result.stdout + result.stderr


def test_min_peak_probability_must_be_a_probability():
    result = run_snakemake(
        "-n", "--config", "segmenter=threshold", "min_peak_probability=2", check=False
    )
    assert result.returncode != 0
    assert "min_peak_probability" in result.stdout + result.stderr


def test_flatten_support_must_not_be_negative():
    result = run_snakemake(
        "-n", "--config", "segmenter=threshold", "flatten_support_px=-4", check=False
    )
    assert result.returncode != 0
    assert "flatten_support_px" in result.stdout + result.stderr


def test_particle_diameter_must_be_positive():
    result = run_snakemake(
        "-n", "--config", "segmenter=threshold", "particle_diameter_nm=0", check=False
    )
    assert result.returncode != 0
    assert "particle_diameter_nm" in result.stdout + result.stderr


@pytest.mark.parametrize("tile_size", [100, 64])
def test_tile_size_must_be_a_multiple_of_32_above_the_overlap(tile_size):
    result = run_snakemake("-n", "--config", f"tile_size={tile_size}", check=False)
    assert result.returncode != 0
    assert "tile_size" in result.stdout + result.stderr


def test_sheet_declares_a_particle_diameter_per_sample(tmp_path):
    sheet = tmp_path / "samples.tsv"
    header = "sample\tpath\tparticle_diameter_nm\n"
    sheet.write_text(header + "big\tresources/example/catalyst_a\t12.5\n")
    ok = run_snakemake("-n", "--config", "segmenter=threshold", f"samples={sheet}", check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    sheet.write_text(
        header + "big\tresources/example/catalyst_a\t12.5\nneg\tresources/example/catalyst_a\t-3\n"
    )
    bad = run_snakemake("-n", "--config", "segmenter=threshold", f"samples={sheet}", check=False)
    assert bad.returncode != 0
    assert "row 3 (sample 'neg')" in bad.stdout + bad.stderr


# ------------------------------------------------------------------------------ end to end
def test_every_output_exists(finished_run):
    per_image = (
        "segmentation.png",
        "labels.tif",
        "particles.parquet",
        "particles.csv",
        "overlay.png",
        "metadata.json",
    )
    images = {
        "catalyst_a": ["a_001", "a_002", "a_003"],
        "growth": [f"growth/frame_{i:04d}" for i in range(5)],
    }
    for sample, names in images.items():
        for name in names:
            for file in per_image:
                assert (finished_run / sample / "images" / name / file).is_file(), (name, file)
            # Intermediates are temporary, and no copy of the pixels is kept.
            assert not (finished_run / sample / "images" / name / "micrograph.json").exists()
        for file in (
            "particles.parquet",
            "particles.csv",
            "particles.xlsx",
            "summary.csv",
            "figures/histogram_equivalent_diameter_nm.png",
            "figures/histogram_circularity.png",
        ):
            assert (finished_run / sample / file).is_file(), (sample, file)
    for file in (
        "series.csv",
        "tracks.csv",
        "track_summary.csv",
        "figures/series_diameter.png",
        "figures/series_count.png",
        "figures/tracks.png",
    ):
        assert (finished_run / "growth" / file).is_file(), file
    assert (finished_run / "summary.csv").is_file()
    # Pixels are read from the micrographs' own files, never copied (labels.tif is an output).
    assert [p for p in finished_run.rglob("*.tif") if p.name != "labels.tif"] == []
    assert (finished_run / "figures" / "comparison.png").is_file()
    assert not (finished_run / "catalyst_a" / "segment").exists()
    # Every mask is kept for reuse, beside what identifies the pixels and segmenter it came from.
    cache = finished_run / ".nanomorph" / "masks"
    for sample, names in images.items():
        for name in names:
            assert (cache / sample / name / "mask.png").is_file(), (sample, name)
            assert (cache / sample / name / "key.json").is_file(), (sample, name)


def test_xlsx_has_a_sheet_per_image(finished_run):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(finished_run / "catalyst_a" / "particles.xlsx", read_only=True)
    assert len(book.sheetnames) == 4  # all particles + 3 images
    header = [cell.value for cell in next(book[book.sheetnames[0]].iter_rows(max_row=1))]
    assert "equivalent_diameter_nm" in header


def test_summary_columns(finished_run):
    summary = pd.read_csv(finished_run / "catalyst_a" / "summary.csv")
    for column in (
        "sample",
        "property",
        "count",
        "mean",
        "sd",
        "median",
        "p5",
        "p95",
        "ci_low",
        "ci_high",
        "n_separated",
        "n_excluded",
        "n_images",
        "n_images_skipped",
    ):
        assert column in summary.columns, column
    assert set(summary["n_images"]) == {3} and set(summary["n_images_skipped"]) == {0}
    row = summary.set_index("property").loc["equivalent_diameter_nm"]
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    merged = pd.read_parquet(finished_run / "catalyst_a" / "particles.parquet")
    assert row["count"] == len(merged)


def test_series_follows_growth(finished_run):
    series = pd.read_csv(finished_run / "growth" / "series.csv")
    assert list(series["frame"]) == [0, 1, 2, 3, 4]
    assert list(series["time_s"]) == [0.0, 10.0, 20.0, 30.0, 40.0]
    tracks = pd.read_csv(finished_run / "growth" / "track_summary.csv")
    long_tracks = tracks[tracks["n_frames"] == 5]
    # The example particles grow by 1 nm per frame; most long tracks must show growth.
    assert len(long_tracks) >= 5
    assert (long_tracks["growth_rate_nm_per_frame"] > 0).mean() > 0.8


def test_metadata_matches_cli_layout(finished_run):
    import json

    meta = json.loads((finished_run / "catalyst_a/images/a_003/metadata.json").read_text())
    assert meta["source"].endswith("a_003.dm3")
    assert meta["pixel_size_nm"] == pytest.approx(0.5)
    assert meta["segmentation"]["segmenter"] == "threshold"
    assert meta["parameters"]["separation"] == "uecs"
    # The sheet declares catalyst_a bright field, so its particles' contrast was checked; the
    # growth series leaves the polarity to the config (auto: no check).
    assert meta["parameters"]["polarity"] == "dark"
    assert meta["segmentation"]["polarity"] == "dark"
    assert "wrong_contrast" in meta["excluded_reasons"]
    series_meta = json.loads(
        (finished_run / "growth/images/growth/frame_0000/metadata.json").read_text()
    )
    assert series_meta["parameters"]["polarity"] == "auto"


def test_frame_counts_are_remembered_for_the_jobs_parses(finished_run):
    # Every job parses the workflow again; the counts let it skip opening every micrograph.
    cache = json.loads((finished_run / ".nanomorph" / "frame_counts.json").read_text())
    counts = {Path(path).name: entry[-1] for path, entry in cache["files"].items()}
    example = REPO / "resources" / "example"
    expected = {path.name: 1 for path in (example / "catalyst_a").iterdir()}
    expected["growth.tif"] = 5
    assert counts == expected


def test_report_shows_overlays_spread_through_each_sample(finished_run):
    # .test config: 3 overlays per sample, so the 5-frame series shows its first, middle, last.
    shown = {
        sample: sorted(
            p.relative_to(finished_run / sample / "report_overlays").as_posix()
            for p in (finished_run / sample / "report_overlays").rglob("*.jpg")
        )
        for sample in ("catalyst_a", "growth")
    }
    assert shown == {
        "catalyst_a": ["a_001.jpg", "a_002.jpg", "a_003.jpg"],
        "growth": ["growth/frame_0000.jpg", "growth/frame_0002.jpg", "growth/frame_0004.jpg"],
    }
    report = finished_run.parent / "report.html"
    run_snakemake("--directory", str(finished_run.parent), "--report", str(report))
    html = report.read_text()
    for name in ("a_003", "growth/frame_0002"):
        assert f"<strong>{name}</strong>" in html, name  # the caption, naming the image
    assert "growth/frame_0001" not in html
    # Bounded by what it shows, not by how many images were analysed.
    assert report.stat().st_size < 20e6


def test_rerun_after_deleting_outputs_gives_identical_tables(finished_run):
    before = read_tables(finished_run)
    for relative in (
        "catalyst_a/images/a_002/particles.parquet",
        "catalyst_a/summary.csv",
        "growth/images/growth/frame_0002/labels.tif",
        "growth/tracks.csv",
    ):
        (finished_run / relative).unlink()
    run_workflow(finished_run.parent)
    assert_same_tables(before, read_tables(finished_run))
    # The tables after segmentation needed the temporary masks again: from the cache, not the
    # segmenter.
    log = (finished_run / "logs/segment/catalyst_a/chunk_0.log").read_text()
    assert "3 of 3 images' masks taken from the cache" in log and "measured" not in log
    # Nothing left to do.
    result = run_snakemake("--directory", str(finished_run.parent), "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_failed_segmentation_job_resumes_from_the_masks_it_made(finished_run, tmp_path):
    # A segmentation job that fails partway (here: its second image's file replaced after it was
    # read, its time kept so that Snakemake does not read it again) keeps the masks it made
    # outside its output, which Snakemake deletes; the retry segments only the rest.
    data = tmp_path / "data"
    shutil.copytree(REPO / "resources/example/catalyst_a", data)
    workdir = make_workdir(tmp_path / "failed")
    sheet = workdir / "config/samples.tsv"
    sheet.write_text(
        re.sub(r"\ncatalyst_a\t[^\t]*\t", f"\ncatalyst_a\t{data}\t", sheet.read_text())
    )
    run_workflow(workdir, "--until", "ingest", "--notemp")
    replaced = data / "a_002.tif"
    pixels, times = replaced.read_bytes(), replaced.stat()
    replaced.write_bytes((data / "a_001.tif").read_bytes())
    os.utime(replaced, ns=(times.st_atime_ns, times.st_mtime_ns))
    failed = run_workflow(workdir, "--until", "segment", "--notemp", check=False)
    assert failed.returncode != 0
    log = (workdir / "results/logs/segment/catalyst_a/chunk_0.log").read_text()
    # The image is read again from its file, checked against what was read before.
    assert f"{replaced}: changed since it was read" in log
    assert not (workdir / "results/catalyst_a/segment/chunk_0").exists()
    cache = workdir / "results/.nanomorph/masks/catalyst_a"
    assert (cache / "a_001/mask.png").exists()
    assert not (cache / "a_002").exists()
    replaced.write_bytes(pixels)
    os.utime(replaced, ns=(times.st_atime_ns, times.st_mtime_ns))
    run_workflow(workdir)
    log = (workdir / "results/logs/segment/catalyst_a/chunk_0.log").read_text()
    assert "1 of 3 images' masks taken from the cache" in log
    assert "measured" in log and "over 2 images" in log
    assert_same_tables(read_tables(finished_run), read_tables(workdir / "results"))


def test_unreadable_image_stops_the_run_or_is_skipped_when_asked(finished_run, tmp_path):
    # The example's catalyst as a series, with a file cut short by a copy among its images.
    data = tmp_path / "data"
    shutil.copytree(REPO / "resources/example/catalyst_a", data)
    (data / "a_002b.tif").write_bytes((data / "a_001.tif").read_bytes()[:3000])
    workdir = make_workdir(tmp_path / "run")
    (workdir / "config/samples.tsv").write_text(
        f"sample\tpath\tseries\tpolarity\ncatalyst_a\t{data}\ttrue\tdark\n"
    )
    stopped = run_workflow(workdir, check=False)
    assert stopped.returncode != 0
    assert "a_002b.tif: cannot be read as a TIFF file" in stopped.stdout + stopped.stderr
    assert not (workdir / "results/catalyst_a/summary.csv").exists()

    run_workflow(workdir, "--config", "unreadable_images=skip")
    results = workdir / "results/catalyst_a"
    metadata = json.loads((results / "images/a_002b/metadata.json").read_text())
    assert "a_002b.tif: cannot be read as a TIFF file" in metadata["skipped"]
    assert metadata["n_particles"] == 0
    assert pd.read_parquet(results / "images/a_002b/particles.parquet").empty
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["n_images"]) == {3} and set(summary["n_images_skipped"]) == {1}
    # The skipped file is the third of four in acquisition order: no row, not a count of 0.
    assert pd.read_csv(results / "series.csv")["frame"].tolist() == [0, 1, 3]
    # The other images are analysed exactly as without the bad file.
    for name in ("a_001", "a_002", "a_003"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(results / f"images/{name}/particles.parquet"),
            pd.read_parquet(finished_run / f"catalyst_a/images/{name}/particles.parquet"),
        )
    log = (workdir / "results/logs/summarize_sample/catalyst_a.log").read_text()
    assert "1 of 4 images skipped as unreadable: a_002b" in log


@pytest.mark.slow
def test_killed_run_resumes_to_identical_tables(finished_run, tmp_path):
    workdir = make_workdir(tmp_path / "killed")
    process = subprocess.Popen(
        [
            *SNAKEMAKE,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    marker = workdir / "results/catalyst_a/images/a_001/particles.parquet"
    while not marker.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # halfway: per-image outputs exist, aggregates do not
    process.wait()
    assert not (workdir / "results/summary.csv").exists()
    # A hard kill leaves Snakemake's lock behind; --unlock is the documented first step.
    run_snakemake("--directory", str(workdir), "--unlock")
    run_workflow(workdir)
    assert_same_tables(read_tables(finished_run), read_tables(workdir / "results"))


def scheduled_resources(output: str, rule: str, resource: str) -> dict[str, int]:
    """A resource (e.g. the time limit in minutes, "runtime") Snakemake gave each job of a rule,
    keyed by the job's wildcards without the chunk ("catalyst_a", "catalyst_a/a_001"), from its
    output."""
    values = {}
    for block in output.split(f"rule {rule}:")[1:]:
        wildcards = dict(
            re.findall(r"(\w+)=([^,\s]+)", re.search(r"wildcards: (.*)", block).group(1))
        )
        key = "/".join(wildcards[name] for name in ("sample", "image") if name in wildcards)
        values[key] = int(re.search(rf"\b{resource}=(\d+)", block).group(1))
    return values


def scheduled_runtimes(output: str, rule: str) -> dict[str, int]:
    return scheduled_resources(output, rule, "runtime")


def test_jobs_time_limits_follow_their_images_megapixels(finished_run):
    # What a cluster kills a job at: start-up plus the image's megapixels at each step's rate
    # (the arithmetic is tested in test_resources.py; here, that each job gets its own image's).
    from nanomorph.resources import (
        INGEST_SECONDS_PER_MEGABYTE,
        PER_IMAGE_BASE_MB,
        PER_IMAGE_MIN_MB,
        PER_IMAGE_SECONDS_PER_MEGAPIXEL,
        PER_IMAGE_STARTUP_MIN,
        SEGMENT_BASE_MB,
        SEGMENT_MIN_MB,
        SEGMENT_STARTUP_MIN,
        memory_mb,
        time_limit_minutes,
    )

    output = (finished_run.parent / "snakemake_output.txt").read_text()
    megapixels = {}
    for meta in finished_run.glob("*/images/**/metadata.json"):
        shape = json.loads(meta.read_text())["shape"]
        key = meta.parent.relative_to(finished_run).as_posix().replace("/images/", "/", 1)
        megapixels[key] = shape[-2] * shape[-1] / 1e6
    assert len(megapixels) == 8
    for rule, rate in PER_IMAGE_SECONDS_PER_MEGAPIXEL.items():
        expected = {
            k: time_limit_minutes(mp, rate, PER_IMAGE_STARTUP_MIN) for k, mp in megapixels.items()
        }
        assert scheduled_runtimes(output, rule) == expected, rule
    # The threshold segmenter's work is the image itself, at the config's 4 s per megapixel.
    expected = {}
    for sample in ("catalyst_a", "growth"):
        sample_mp = sum(mp for key, mp in megapixels.items() if key.startswith(sample + "/"))
        expected[sample] = time_limit_minutes(sample_mp, 4.0, SEGMENT_STARTUP_MIN)
    assert scheduled_runtimes(output, "segment") == expected
    expected_mb = {}
    for sample in ("catalyst_a", "growth"):
        largest = max(mp for key, mp in megapixels.items() if key.startswith(sample + "/"))
        expected_mb[sample] = memory_mb(largest, 40, SEGMENT_BASE_MB, SEGMENT_MIN_MB)
    assert scheduled_resources(output, "segment", "mem_mb") == expected_mb
    # Reading goes by the file's megabytes per frame (a stack's share), the pixels unknown yet.
    example = REPO / "resources" / "example"
    expected = {}
    for key in megapixels:
        sample, image = key.split("/", 1)
        if sample == "growth":
            source, frames = example / "growth.tif", 5
        else:
            source, frames = next((example / sample).glob(image + ".*")), 1
        megabytes = source.stat().st_size / 1e6 / frames
        expected[key] = time_limit_minutes(
            megabytes, INGEST_SECONDS_PER_MEGABYTE, PER_IMAGE_STARTUP_MIN
        )
    assert scheduled_runtimes(output, "ingest") == expected
    # Memory: what the steps always declared for camera-sized images (the growth with
    # megapixels is tested in test_resources.py; here, that each job gets its own image's).
    for rule in ("ingest", "postprocess", "measure", "overlay"):
        expected_mb = {
            key: memory_mb(
                0.0 if rule == "ingest" else mp, 40, PER_IMAGE_BASE_MB, PER_IMAGE_MIN_MB[rule]
            )
            for key, mp in megapixels.items()
        }
        assert scheduled_resources(output, rule, "mem_mb") == expected_mb, rule


@pytest.mark.slow
@pytest.mark.skipif(not default_model_available(), reason="the shipped model is not present")
def test_end_to_end_with_model(tmp_path):
    from nanomorph.segment.inference import network_megapixels
    from nanomorph.segment.model import CONFIG_FILE, find_model_folder

    workdir = make_workdir(tmp_path / "model", segmenter="model")
    # 600 s per megapixel: a limit far above the 5 minutes of start-up, to check its size.
    run = run_workflow(workdir, "--config", "segment_seconds_per_megapixel=600", timeout=600)
    results = workdir / "results"
    # Each sample's segmentation job got a time limit from its own images' network work, worked
    # out when it was scheduled (a dry run, before the images are read, shows a flat hour).
    model_config = json.loads((find_model_folder(None) / CONFIG_FILE).read_text())
    expected = {}
    for sample in ("catalyst_a", "growth"):
        megapixels = 0.0
        for meta in sorted((results / sample / "images").rglob("metadata.json")):
            image = json.loads(meta.read_text())
            megapixels += network_megapixels(image["shape"], image["pixel_size_nm"], model_config)
        expected[sample] = math.ceil(5 + megapixels * 600 / 60)
    assert scheduled_runtimes(run.stdout + run.stderr, "segment") == expected
    assert expected["catalyst_a"] > 5 + 3  # three images of network work, not start-up alone
    log = (results / "logs/segment/catalyst_a/chunk_0.log").read_text()
    assert re.search(r"measured [\d.]+ s per megapixel over 3 images", log)
    assert (results / "catalyst_a" / "particles.xlsx").is_file()
    assert (results / "model" / "metrics.csv").is_file()
    meta = (results / "catalyst_a/images/a_001/metadata.json").read_text()
    assert '"segmenter": "model"' in meta
    assert '"test_time_flips": false' in meta  # the default: one pass
    assert '"particle_diameter_nm": null' in meta  # not declared by default
