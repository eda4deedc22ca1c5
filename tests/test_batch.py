from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile

from nanomorph.batch import BatchImage, MaskCheckpoints, segment_batch
from nanomorph.outputs import read_mask_png


class CountingSegmenter:
    """Dark pixels are particles; counts its calls and fails on the image named in ``fail_on``."""

    def __init__(self, threshold: float = 0.5, fail_on: int | None = None) -> None:
        self.threshold = threshold
        self.fail_on = fail_on
        self.calls: list[int] = []

    def __call__(self, image: np.ndarray, pixel_size_nm: float) -> np.ndarray:
        index = int(image[0, 0])
        if index == self.fail_on:
            raise MemoryError("killed")
        self.calls.append(index)
        return image < self.threshold * image.max()

    def describe(self) -> dict:
        return {"segmenter": "counting", "threshold": self.threshold}


def make_images(folder, n: int = 4) -> list[BatchImage]:
    images = []
    for index in range(n):
        image = np.full((16, 24), 100.0, dtype=np.float32)
        image[4 : 8 + index, 5:12] = 10.0  # a dark particle, larger in each image
        image[0, 0] = index  # tells the segmenter which image it has
        path = folder / f"img_{index}.tif"
        tifffile.imwrite(path, image)
        images.append(BatchImage(f"img_{index}", path, 0.5))
    return images


def test_batch_writes_each_mask_then_its_description(tmp_path):
    images = make_images(tmp_path)
    segmenter = CountingSegmenter()
    report = segment_batch(segmenter, images, tmp_path / "out")
    assert segmenter.calls == [0, 1, 2, 3]
    assert (report.segmented, report.resumed) == (4, 0)
    assert report.megapixels == pytest.approx(4 * 16 * 24 / 1e6)
    for index, item in enumerate(images):
        mask = read_mask_png(tmp_path / "out" / item.name / "mask.png")
        assert mask.sum() == (4 + index) * 7 + 1  # the particle, and the index pixel of image 0..3
    description = json.loads((tmp_path / "out" / "segmenter.json").read_text())
    assert description == segmenter.describe()


def test_interrupted_batch_resumes_where_it_stopped(tmp_path):
    images = make_images(tmp_path)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(MemoryError):
        segment_batch(
            CountingSegmenter(fail_on=2), images, tmp_path / "out1", checkpoint_dir=checkpoints
        )
    assert not (tmp_path / "out1" / "segmenter.json").exists()  # not complete
    retry = CountingSegmenter()
    report = segment_batch(retry, images, tmp_path / "out2", checkpoint_dir=checkpoints)
    assert retry.calls == [2, 3]
    assert (report.segmented, report.resumed) == (2, 2)
    assert report.megapixels == pytest.approx(2 * 16 * 24 / 1e6)
    # The same masks as one uninterrupted batch, and the checkpoints gone.
    segment_batch(CountingSegmenter(), images, tmp_path / "whole")
    for item in images:
        assert np.array_equal(
            read_mask_png(tmp_path / "out2" / item.name / "mask.png"),
            read_mask_png(tmp_path / "whole" / item.name / "mask.png"),
        )
    assert (tmp_path / "out2" / "segmenter.json").exists()
    assert not checkpoints.exists()


def test_checkpoints_of_another_segmenter_are_not_used(tmp_path):
    images = make_images(tmp_path)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(MemoryError):
        segment_batch(
            CountingSegmenter(fail_on=3), images, tmp_path / "a", checkpoint_dir=checkpoints
        )
    other = CountingSegmenter(threshold=0.05)  # another setting: every mask differs
    report = segment_batch(other, images, tmp_path / "b", checkpoint_dir=checkpoints)
    assert other.calls == [0, 1, 2, 3]
    assert report.resumed == 0
    assert read_mask_png(tmp_path / "b" / "img_1" / "mask.png").sum() == 1


def test_checkpoint_of_a_changed_image_or_pixel_size_is_not_used(tmp_path):
    images = make_images(tmp_path, n=3)
    checkpoints = MaskCheckpoints(tmp_path / "checkpoints", {"segmenter": "x"})
    for item in images:
        checkpoints.save(item.name, item.path, item.pixel_size_nm, np.ones((2, 2), bool))
    first, second, third = images
    assert checkpoints.load(first.name, first.path, 0.5) is not None
    assert checkpoints.load(first.name, first.path, 0.25) is None  # another calibration
    # The image file written again (a re-read micrograph): a new modification time.
    stat = os.stat(second.path)
    os.utime(second.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert checkpoints.load(second.name, second.path, 0.5) is None
    # A mask whose record was never written (killed while saving) is absent.
    (checkpoints.directory / third.name / "source.json").unlink()
    assert checkpoints.load(third.name, third.path, 0.5) is None
    # Reopened with the same description, the valid one is still there.
    again = MaskCheckpoints(tmp_path / "checkpoints", {"segmenter": "x"})
    assert again.load(first.name, first.path, 0.5) is not None


def test_unreadable_checkpoint_is_absent(tmp_path):
    (item,) = make_images(tmp_path, n=1)
    checkpoints = MaskCheckpoints(tmp_path / "checkpoints", {"segmenter": "x"})
    checkpoints.save(item.name, item.path, item.pixel_size_nm, np.ones((2, 2), bool))
    (checkpoints.directory / item.name / "mask.png").write_bytes(b"not a png")
    assert checkpoints.load(item.name, item.path, item.pixel_size_nm) is None
    (checkpoints.directory / "segmenter.json").write_text("{")
    reopened = MaskCheckpoints(tmp_path / "checkpoints", {"segmenter": "x"})
    assert not (reopened.directory / item.name).exists()  # emptied, not an error


def test_frames_of_a_stack_keep_their_folders(tmp_path):
    frames = [
        BatchImage(f"stack/frame_{index:04d}", item.path, item.pixel_size_nm)
        for index, item in enumerate(make_images(tmp_path, n=2))
    ]
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(MemoryError):
        segment_batch(
            CountingSegmenter(fail_on=1), frames, tmp_path / "a", checkpoint_dir=checkpoints
        )
    retry = CountingSegmenter()
    segment_batch(retry, frames, tmp_path / "b", checkpoint_dir=checkpoints)
    assert retry.calls == [1]
    assert (tmp_path / "b" / "stack" / "frame_0000" / "mask.png").exists()
    assert (tmp_path / "b" / "stack" / "frame_0001" / "mask.png").exists()
