"""Finding micrographs in files, folders and globs, and naming the images of stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nanomorph.io import (
    FrameCountCache,
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


# ---------------------------------------------------------------- frame count cache
@pytest.fixture
def counted(tmp_path, monkeypatch):
    """A folder of two files, and a record of the files count_frames actually opened."""
    import nanomorph.io as io

    opened: list[str] = []
    real = io._count_frames

    def recording(path):
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(io, "_count_frames", recording)
    folder = tmp_path / "sample"
    write_image(folder / "single.tif")
    write_image(folder / "stack.tif", n_frames=3)
    return folder, opened


def counted_and_saved(folder: Path, cache_file: Path) -> Path:
    cache = FrameCountCache(cache_file)
    image_sources(find_micrographs(folder), cache=cache)
    cache.save()
    return cache_file


def test_cached_counts_give_the_same_images_without_opening_the_files(counted, tmp_path):
    folder, opened = counted
    cache_file = tmp_path / "results" / ".nanomorph" / "frame_counts.json"
    first = FrameCountCache(cache_file)
    images = image_sources(find_micrographs(folder), cache=first)
    first.save()
    assert images == image_sources(find_micrographs(folder))
    assert cache_file.is_file()
    assert list(cache_file.parent.iterdir()) == [cache_file]  # no temporary file left
    opened.clear()

    second = FrameCountCache(cache_file)
    assert image_sources(find_micrographs(folder), cache=second) == images
    assert opened == [] and (second.hits, second.misses) == (2, 0)


def test_a_changed_file_is_counted_again(counted, tmp_path):
    folder, opened = counted
    cache_file = counted_and_saved(folder, tmp_path / "frame_counts.json")
    write_image(folder / "single.tif", n_frames=2)  # same name, now a stack
    opened.clear()

    again = FrameCountCache(cache_file)
    images = image_sources(find_micrographs(folder), cache=again)
    assert opened == ["single.tif"]
    assert "single/frame_0001" in images and "single" not in images
    again.save()
    assert FrameCountCache(cache_file).count(folder / "single.tif") == 2


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"rules_version": 0, "files": {}}',
        '["a list"]',
        '{"rules_version": 1, "files": {"x": "y"}}',
    ],
    ids=["corrupt", "older rules", "not a mapping", "bad entry"],
)
def test_an_unusable_cache_file_is_ignored_and_replaced(counted, tmp_path, content):
    folder, opened = counted
    cache_file = tmp_path / "frame_counts.json"
    cache_file.write_text(content)
    cache = FrameCountCache(cache_file)
    assert len(image_sources(find_micrographs(folder), cache=cache)) == 4
    assert sorted(opened) == ["single.tif", "stack.tif"]
    cache.save()
    assert FrameCountCache(cache_file).count(folder / "stack.tif") == 3


def test_an_unreadable_file_is_refused_and_not_remembered(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all")
    cache = FrameCountCache(tmp_path / "frame_counts.json")
    for _ in range(2):
        with pytest.raises(MicrographError, match="broken.tif: cannot be read as a TIFF"):
            cache.count(broken)
    with pytest.raises(MicrographError, match="missing.tif"):
        cache.count(tmp_path / "missing.tif")
    cache.save()
    assert not (tmp_path / "frame_counts.json").exists()


def test_saving_keeps_what_another_run_saved_and_drops_deleted_files(tmp_path):
    a = write_image(tmp_path / "a" / "one.tif")
    b = write_image(tmp_path / "b" / "two.tif", n_frames=2)
    gone = write_image(tmp_path / "c" / "gone.tif")
    cache_file = tmp_path / "frame_counts.json"
    first, second = FrameCountCache(cache_file), FrameCountCache(cache_file)
    first.count(a)
    first.count(gone)
    first.save()
    gone.unlink()
    second.count(b)
    second.save()
    import json

    saved = json.loads(cache_file.read_text())["files"]
    assert sorted(Path(key).name for key in saved) == ["one.tif", "two.tif"]


def test_a_cache_that_counted_nothing_new_is_not_rewritten(counted, tmp_path):
    folder, _ = counted
    cache_file = counted_and_saved(folder, tmp_path / "frame_counts.json")
    cache_file.write_text(cache_file.read_text() + " ")  # a marker a rewrite would remove
    again = FrameCountCache(cache_file)
    image_sources(find_micrographs(folder), cache=again)
    again.save()
    assert cache_file.read_text().endswith(" ")
