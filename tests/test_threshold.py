from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from nanomorph.segment.threshold import infer_polarity, segment_threshold


def _disks(dark: bool) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((128, 128), bool)
    for c in [(30, 30), (90, 40), (60, 100)]:
        mask[disk(c, 10, shape=mask.shape)] = True
    rng = np.random.default_rng(3)
    fg, bg = (0.2, 0.9) if dark else (0.9, 0.2)
    image = np.where(mask, fg, bg) + rng.normal(0, 0.05, mask.shape)
    return image.astype(np.float32), mask


@pytest.mark.parametrize("dark", [True, False])
def test_auto_polarity_finds_particles(dark):
    image, truth = _disks(dark)
    assert infer_polarity(image) == ("dark" if dark else "bright")
    mask = segment_threshold(image, 0.5, polarity="auto")
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9


def test_wrong_polarity_gives_the_background():
    image, truth = _disks(dark=True)
    mask = segment_threshold(image, 0.5, polarity="bright")
    assert (mask & truth).sum() < 0.05 * truth.sum()


def test_constant_image_is_refused():
    with pytest.raises(ValueError, match="constant"):
        segment_threshold(np.ones((16, 16)), 0.5)
    with pytest.raises(ValueError, match="polarity"):
        segment_threshold(np.ones((16, 16)), 0.5, polarity="grey")
