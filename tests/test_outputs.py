from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nanomorph.outputs import (
    atomic_directory,
    atomic_path,
    read_labels_tif,
    read_mask_png,
    read_table,
    write_json,
    write_labels_tif,
    write_mask_png,
    write_table,
)


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a table")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_the_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report_overlays"
    with atomic_directory(target) as folder:
        (folder / "a.jpg").write_bytes(b"first")
    assert [p.name for p in target.iterdir()] == ["a.jpg"]
    with pytest.raises(RuntimeError), atomic_directory(target) as folder:
        (folder / "b.jpg").write_bytes(b"second")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["a.jpg"]  # the complete folder is kept
    with atomic_directory(target) as folder:
        (folder / "b.jpg").write_bytes(b"second")
    assert [p.name for p in target.iterdir()] == ["b.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["report_overlays"]  # nothing temporary


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and tmp != target
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_round_trips(tmp_path):
    mask = np.zeros((7, 9), bool)
    mask[2:5, 3:8] = True
    write_mask_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_mask_png(tmp_path / "m.png"), mask)

    labels = np.arange(63, dtype=np.uint32).reshape(7, 9) * 70000
    write_labels_tif(tmp_path / "l.tif", labels)
    np.testing.assert_array_equal(read_labels_tif(tmp_path / "l.tif"), labels)

    df = pd.DataFrame({"equivalent_diameter_nm": [1.5, 2.5], "separated": [True, False]})
    write_table(df, tmp_path / "t.parquet", tmp_path / "t.csv", tmp_path / "t.xlsx")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), df)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), df)
    assert pd.read_excel(tmp_path / "t.xlsx").shape == (2, 2)

    write_json(tmp_path / "m.json", {"n": np.int64(3), "px": np.float32(0.5)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"n": 3, "px": 0.5}
