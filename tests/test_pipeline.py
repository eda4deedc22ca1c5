from __future__ import annotations

import json

import pytest

from nanomorph.pipeline import skip_reason, skipped_image_record


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
