"""Job time limits from megapixels (nanomorph.resources)."""

from __future__ import annotations

import pytest

from nanomorph.resources import (
    PER_IMAGE_BASE_MB,
    PER_IMAGE_MB_PER_MEGAPIXEL,
    PER_IMAGE_MIN_MB,
    PER_IMAGE_SECONDS_PER_MEGAPIXEL,
    PER_IMAGE_STARTUP_MIN,
    SEGMENT_BASE_MB,
    SEGMENT_MB_PER_MEGAPIXEL,
    SEGMENT_MIN_MB,
    memory_mb,
    time_limit_minutes,
)


def test_a_4096_image_postprocess_limit_is_start_up_plus_its_megapixels_at_the_rate():
    # 16.78 megapixels at 20 s each is 335.5 s = 5.59 min; with 2 min to start, 8 whole minutes.
    assert time_limit_minutes(4096 * 4096 / 1e6, 20.0, 2) == 8


@pytest.mark.parametrize(("attempt", "minutes"), [(1, 8), (2, 16), (3, 32)])
def test_each_retry_doubles_the_limit(attempt, minutes):
    assert time_limit_minutes(4096 * 4096 / 1e6, 20.0, 2, attempt) == minutes


def test_no_pixels_leaves_the_start_up_and_a_partial_minute_rounds_up():
    assert time_limit_minutes(0.0, 4.0, 5) == 5
    assert time_limit_minutes(0.01, 4.0, 5) == 6


def test_per_image_limits_stay_far_below_an_hour_for_a_4096_image():
    # A group job of 20 such images adds the members' limits: a few hours, not a day.
    total = sum(
        time_limit_minutes(4096 * 4096 / 1e6, rate, PER_IMAGE_STARTUP_MIN)
        for rate in PER_IMAGE_SECONDS_PER_MEGAPIXEL.values()
    )
    assert total == 8 + 4 + 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1.0, 4.0, 5), "megapixels"),
        ((float("nan"), 4.0, 5), "megapixels"),
        ((1.0, 0.0, 5), "seconds per megapixel"),
        ((1.0, 4.0, 5, 0), "attempt"),
    ],
)
def test_bad_arguments_are_rejected_by_name(args, message):
    with pytest.raises(ValueError, match=message):
        time_limit_minutes(*args)


def test_memory_of_camera_sized_images_is_what_the_steps_always_declared():
    for step, minimum in PER_IMAGE_MIN_MB.items():
        assert memory_mb(4096 * 4096 / 1e6, 40, 1000, minimum) == minimum, step


def test_memory_grows_with_a_large_image_and_doubles_per_retry():
    # A 16k x 16k montage: 268 megapixels at 40 MB each plus 1,000 MB to start.
    megapixels = 16384 * 16384 / 1e6
    first = memory_mb(megapixels, PER_IMAGE_MB_PER_MEGAPIXEL, PER_IMAGE_BASE_MB, 4000)
    assert first == 11738
    assert memory_mb(megapixels, 40, 1000, 4000, attempt=2) == 2 * first


@pytest.mark.parametrize(("amount", "attempt"), [(-1.0, 1), (float("nan"), 1), (1.0, 0)])
def test_memory_refuses_impossible_arguments(amount, attempt):
    with pytest.raises(ValueError):
        memory_mb(amount, 40, 1000, 2000, attempt)


def test_segmentation_memory_is_8_gb_up_to_montages():
    args = (SEGMENT_MB_PER_MEGAPIXEL, SEGMENT_BASE_MB, SEGMENT_MIN_MB)
    assert memory_mb(4096 * 4096 / 1e6, *args) == 8000
    assert memory_mb(20000 * 20000 / 1e6, *args) == 2000 + 400 * 40
