from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import tifffile

from nanomorph.batch import BatchImage, MaskCache, pixels_sha256, segment_batch
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
        images.append(BatchImage(f"img_{index}", partial(tifffile.imread, path), 0.5))
    return images


def test_batch_writes_each_mask_then_its_description(tmp_path):
    images = make_images(tmp_path)
    segmenter = CountingSegmenter()
    report = segment_batch(segmenter, images, tmp_path / "out")
    assert segmenter.calls == [0, 1, 2, 3]
    assert (report.segmented, report.from_cache) == (4, 0)
    assert report.megapixels == pytest.approx(4 * 16 * 24 / 1e6)
    for index, item in enumerate(images):
        mask = read_mask_png(tmp_path / "out" / item.name / "mask.png")
        assert mask.sum() == (4 + index) * 7 + 1  # the particle, and the index pixel of image 0..3
    description = json.loads((tmp_path / "out" / "segmenter.json").read_text())
    assert description == segmenter.describe()


def test_interrupted_batch_resumes_where_it_stopped(tmp_path):
    images = make_images(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(MemoryError):
        segment_batch(CountingSegmenter(fail_on=2), images, tmp_path / "out1", cache_dir=cache)
    assert not (tmp_path / "out1" / "segmenter.json").exists()  # not complete
    retry = CountingSegmenter()
    report = segment_batch(retry, images, tmp_path / "out2", cache_dir=cache)
    assert retry.calls == [2, 3]
    assert (report.segmented, report.from_cache) == (2, 2)
    assert report.megapixels == pytest.approx(2 * 16 * 24 / 1e6)
    # The same masks as one uninterrupted batch.
    segment_batch(CountingSegmenter(), images, tmp_path / "whole")
    for item in images:
        assert np.array_equal(
            read_mask_png(tmp_path / "out2" / item.name / "mask.png"),
            read_mask_png(tmp_path / "whole" / item.name / "mask.png"),
        )
    assert (tmp_path / "out2" / "segmenter.json").exists()
    # Run again (a setting after segmentation changed): nothing is segmented.
    again = CountingSegmenter()
    report = segment_batch(again, images, tmp_path / "out3", cache_dir=cache)
    assert again.calls == [] and (report.segmented, report.from_cache) == (0, 4)
    assert report.seconds_per_megapixel is None


def test_masks_of_another_segmenter_are_not_used(tmp_path):
    images = make_images(tmp_path)
    cache = tmp_path / "cache"
    segment_batch(CountingSegmenter(), images, tmp_path / "a", cache_dir=cache)
    other = CountingSegmenter(threshold=0.05)  # another setting: every mask differs
    report = segment_batch(other, images, tmp_path / "b", cache_dir=cache)
    assert other.calls == [0, 1, 2, 3]
    assert report.from_cache == 0
    assert read_mask_png(tmp_path / "b" / "img_1" / "mask.png").sum() == 1
    # The cache now holds the second segmenter's masks.
    third = CountingSegmenter(threshold=0.05)
    assert segment_batch(third, images, tmp_path / "c", cache_dir=cache).from_cache == 4


def test_cached_mask_of_other_pixels_or_pixel_size_is_not_used(tmp_path):
    cache = MaskCache(tmp_path / "cache", {"segmenter": "x"})
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = image > 5
    cache.save("a", image, 0.5, mask)
    assert np.array_equal(cache.load("a", image.copy(), 0.5), mask)
    assert cache.load("a", image, 0.25) is None  # another calibration
    changed = image.copy()
    changed[0, 0] += 1
    assert cache.load("a", changed, 0.5) is None  # other pixels
    assert cache.load("a", image.astype(np.float64), 0.5) is None  # another type
    assert cache.load("b", image, 0.5) is None  # another name
    assert MaskCache(tmp_path / "cache", {"segmenter": "y"}).load("a", image, 0.5) is None
    # Reopened with the same description, it is still there.
    assert MaskCache(tmp_path / "cache", {"segmenter": "x"}).load("a", image, 0.5) is not None


def test_unreadable_or_half_saved_cache_entry_is_absent(tmp_path):
    cache = MaskCache(tmp_path / "cache", {"segmenter": "x"})
    image = np.zeros((3, 4), np.uint16)
    cache.save("a", image, 0.5, np.ones((3, 4), bool))
    (cache.directory / "a" / "mask.png").write_bytes(b"not a png")
    assert cache.load("a", image, 0.5) is None
    cache.save("b", image, 0.5, np.ones((3, 4), bool))
    (cache.directory / "b" / "key.json").unlink()  # killed between the mask and its key
    assert cache.load("b", image, 0.5) is None
    cache.save("c", image, 0.5, np.ones((3, 4), bool))
    (cache.directory / "c" / "key.json").write_text("{")
    assert cache.load("c", image, 0.5) is None


def test_pixels_checksum_sees_values_shape_and_type():
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    assert pixels_sha256(image) == pixels_sha256(image.copy())
    assert pixels_sha256(image) == pixels_sha256(np.asfortranarray(image))
    assert pixels_sha256(image) != pixels_sha256(image.reshape(3, 2))
    assert pixels_sha256(image) != pixels_sha256(image.astype(np.int16))
    assert pixels_sha256(image) != pixels_sha256(image[::-1])


def test_frames_of_a_stack_keep_their_folders(tmp_path):
    frames = [
        BatchImage(f"stack/frame_{index:04d}", item.read, item.pixel_size_nm)
        for index, item in enumerate(make_images(tmp_path, n=2))
    ]
    cache = tmp_path / "cache"
    with pytest.raises(MemoryError):
        segment_batch(CountingSegmenter(fail_on=1), frames, tmp_path / "a", cache_dir=cache)
    retry = CountingSegmenter()
    segment_batch(retry, frames, tmp_path / "b", cache_dir=cache)
    assert retry.calls == [1]
    assert (tmp_path / "b" / "stack" / "frame_0000" / "mask.png").exists()
    assert (tmp_path / "b" / "stack" / "frame_0001" / "mask.png").exists()


def test_a_checksum_the_reader_verified_is_the_cache_key(tmp_path):
    # The workflow's reader checks each image against the checksum ingest recorded; the cache
    # takes that checksum as its key rather than hashing the pixels again.
    images = make_images(tmp_path, n=2)
    cache = tmp_path / "cache"
    segment_batch(CountingSegmenter(), images, tmp_path / "a", cache_dir=cache)
    known = [
        BatchImage(item.name, item.read, item.pixel_size_nm, pixels_sha256(item.read()))
        for item in images
    ]
    again = CountingSegmenter()
    assert segment_batch(again, known, tmp_path / "b", cache_dir=cache).from_cache == 2
    assert again.calls == []
    wrong = [BatchImage(item.name, item.read, item.pixel_size_nm, "0" * 64) for item in images]
    other = CountingSegmenter()
    assert segment_batch(other, wrong, tmp_path / "c", cache_dir=cache).segmented == 2
