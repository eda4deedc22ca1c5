from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from nanomorph.io import MicrographError, read_frame, write_calibrated_tiff
from nanomorph.pipeline import (
    ingested_image_record,
    read_recorded_image,
    skip_reason,
    skipped_image_record,
)


def test_skipped_image_record_carries_the_reason_and_no_calibration():
    record = skipped_image_record("stack/frame_0002", "data/stack.tif", 2, "data/stack.tif: cut")
    assert json.loads(json.dumps(record)) == record  # written as micrograph.json
    assert record["pixel_size_nm"] is None and record["frame"] == 2
    assert skip_reason(record) == "data/stack.tif: cut"


def test_an_image_read_normally_has_no_skip_reason():
    assert skip_reason({"name": "a", "pixel_size_nm": 0.2, "frame": None}) is None
    assert skip_reason({"name": "a", "skipped": None}) is None


def test_a_skip_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        skipped_image_record("a", "a.tif", None, "")


# ------------------------------------------------------------------ reading an image again
def stack(n_frames: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4000, (n_frames, 12, 16)).astype(np.uint16)


def test_recorded_frame_is_read_again_as_it_was_read(tmp_path):
    path = write_calibrated_tiff(tmp_path / "series.tif", stack(), 0.25)
    micrograph = read_frame(path, 2)
    record = ingested_image_record(micrograph)
    assert json.loads(json.dumps(record)) == record  # written as micrograph.json
    assert record["frame"] == 2 and record["pixel_size_nm"] == pytest.approx(0.25)
    again = read_recorded_image(record)
    assert again.dtype == np.float32
    np.testing.assert_array_equal(again, stack()[2])


def test_a_pixel_size_given_by_the_user_is_given_again(tmp_path):
    # A TIFF without a calibration reads only with the pixel size the sample sheet gives.
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, stack(1)[0])
    micrograph = read_frame(path, 0, pixel_size_nm=0.4)
    record = ingested_image_record(micrograph)
    assert record["calibration_source"] == "user"
    np.testing.assert_array_equal(read_recorded_image(record), stack(1)[0])


def test_a_file_changed_since_it_was_read_is_refused(tmp_path):
    path = write_calibrated_tiff(tmp_path / "a.tif", stack(1)[0], 0.25)
    record = ingested_image_record(read_frame(path, 0))
    write_calibrated_tiff(path, stack(1)[0] + 1, 0.25)
    with pytest.raises(MicrographError, match=r"a\.tif: changed since it was read"):
        read_recorded_image(record)
    path.unlink()
    with pytest.raises(MicrographError, match=r"a\.tif"):
        read_recorded_image(record)


def test_a_skipped_image_has_no_pixels_to_read():
    record = skipped_image_record("a", "data/a.tif", None, "data/a.tif: cut short")
    with pytest.raises(MicrographError, match="skipped when read"):
        read_recorded_image(record)


def _image_folder(out, name, diameters_nm, n_excluded):
    import pandas as pd

    from nanomorph.measure import empty_particle_table
    from nanomorph.outputs import write_json, write_table

    table = empty_particle_table()
    if diameters_nm:
        table = pd.DataFrame(
            {column: [0.0] * len(diameters_nm) for column in table.columns}
        ).astype(table.dtypes.to_dict())
        table["image"] = name
        table["particle_id"] = range(1, len(diameters_nm) + 1)
        table["equivalent_diameter_nm"] = diameters_nm
    (out / name).mkdir(parents=True)
    write_table(table, out / name / "particles.parquet")
    write_json(out / name / "metadata.json", {"image": name, "n_excluded": n_excluded})


def test_combined_outputs_hold_every_image_and_count_those_without_particles(tmp_path):
    import pandas as pd

    from nanomorph.pipeline import write_combined_outputs

    _image_folder(tmp_path, "first", [2.0, 4.0], n_excluded=1)
    _image_folder(tmp_path, "empty", [], n_excluded=0)
    _image_folder(tmp_path, "last", [6.0], n_excluded=2)
    summary = write_combined_outputs(tmp_path, ["first", "empty", "last"], n_boot=200)

    table = pd.read_csv(tmp_path / "particles.csv")
    assert list(table["image"]) == ["first", "first", "last"]
    assert pd.read_parquet(tmp_path / "particles.parquet").shape == table.shape
    written = pd.read_csv(tmp_path / "summary.csv").set_index("property")
    diameter = written.loc["equivalent_diameter_nm"]
    assert diameter["count"] == 3 and diameter["mean"] == pytest.approx(4.0)
    assert diameter["sd"] == pytest.approx(2.0)
    assert diameter["n_images"] == 3 and diameter["n_excluded"] == 3
    assert len(summary) == len(written)
    assert (tmp_path / "figures" / "histogram_equivalent_diameter_nm.png").stat().st_size > 0
    sheets = pd.read_excel(tmp_path / "particles.xlsx", sheet_name=None)
    assert len(sheets["all particles"]) == 3 and {"first", "last"} <= set(sheets)


def test_combined_outputs_of_images_without_particles(tmp_path):
    from nanomorph.pipeline import write_combined_outputs

    _image_folder(tmp_path, "a", [], n_excluded=0)
    _image_folder(tmp_path, "b", [], n_excluded=4)
    summary = write_combined_outputs(tmp_path, ["a", "b"]).set_index("property")
    diameter = summary.loc["equivalent_diameter_nm"]
    assert diameter["count"] == 0 and np.isnan(diameter["mean"])
    assert diameter["n_images"] == 2 and diameter["n_excluded"] == 4
    assert (tmp_path / "particles.csv").is_file()
