"""Finding micrographs in files, folders and globs, and naming the images of stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nanomorph.io import (
    MicrographError,
    count_frames,
    find_micrographs,
    image_sources,
    read_micrographs,
    write_calibrated_tiff,
)


def write_image(path: Path, n_frames: int = 1) -> Path:
    shape = (n_frames, 8, 8) if n_frames > 1 else (8, 8)
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return write_calibrated_tiff(path, image, pixel_size_nm=0.5)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    for name in ("b.tif", "a.tif", "c.TIFF"):
        write_image(root / name)
    (root / "notes.txt").write_text("not a micrograph")
    write_image(root / "nested" / "d.tif")  # below the folder: not part of it
    return root


def test_folder_gives_its_supported_files_sorted(folder):
    assert find_micrographs(folder) == [folder / "a.tif", folder / "b.tif", folder / "c.TIFF"]


def test_glob_gives_matching_supported_files_sorted(folder):
    assert find_micrographs(folder / "*.tif") == [folder / "a.tif", folder / "b.tif"]
    assert find_micrographs(str(folder / "*" / "*.tif")) == [folder / "nested" / "d.tif"]


def test_file_is_returned_as_given(folder):
    assert find_micrographs(str(folder / "b.tif")) == [folder / "b.tif"]


def test_empty_folder_is_refused_naming_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    with pytest.raises(MicrographError, match="folder holds no micrographs") as info:
        find_micrographs(empty)
    assert str(empty) in str(info.value)


def test_pattern_matching_nothing_is_refused_naming_it(tmp_path):
    pattern = tmp_path / "missing" / "*.dm4"
    with pytest.raises(MicrographError, match="as a glob matches no micrographs") as info:
        find_micrographs(pattern)
    assert str(pattern) in str(info.value)


def test_count_frames_agrees_with_the_reader(tmp_path):
    stack = write_image(tmp_path / "stack.tif", n_frames=3)
    single = write_image(tmp_path / "single.tif")
    assert count_frames(stack) == 3 == len(read_micrographs(stack))
    assert count_frames(single) == 1 == len(read_micrographs(single))


@pytest.mark.parametrize(
    ("shape", "imagej_axes"),
    [((3, 20, 30), "CYX"), ((2, 3, 20, 30), "ZCYX"), ((2, 2, 20, 30), None)],
)
def test_count_frames_agrees_with_the_reader_on_channels_and_every_leading_axis(
    tmp_path, shape, imagej_axes
):
    # The workflow names one job per counted frame and each job reads its frame: a count from
    # the ImageJ frames x slices alone, or from a plain TIFF's first axis, left frames out.
    import tifffile

    path = tmp_path / "stack.tif"
    data = np.random.default_rng(0).integers(0, 1000, shape).astype(np.uint16)
    if imagej_axes:
        tifffile.imwrite(
            path, data, imagej=True, photometric="minisblack", metadata={"axes": imagej_axes}
        )
    else:
        tifffile.imwrite(path, data, photometric="minisblack")
    assert (
        count_frames(path) == len(read_micrographs(path, pixel_size_nm=0.5)) == np.prod(shape[:-2])
    )


def test_count_frames_of_unreadable_tiff_names_the_file(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all")
    with pytest.raises(MicrographError, match="broken.tif: cannot be read as a TIFF"):
        count_frames(broken)


def test_stack_frames_are_named_like_micrographs(tmp_path):
    stack = write_image(tmp_path / "growth.tif", n_frames=3)
    single = write_image(tmp_path / "still.tif")
    images = image_sources([single, stack])
    assert images == {
        "still": (single, None),
        "growth/frame_0000": (stack, 0),
        "growth/frame_0001": (stack, 1),
        "growth/frame_0002": (stack, 2),
    }
    assert list(images) == [m.name for f in (single, stack) for m in read_micrographs(f)]


def test_two_files_with_one_stem_are_refused(tmp_path):
    first = write_image(tmp_path / "a.tif")
    second = write_image(tmp_path / "a.tiff")
    with pytest.raises(MicrographError, match="image name 'a'") as info:
        image_sources(find_micrographs(tmp_path))
    assert str(first) in str(info.value) and str(second) in str(info.value)
