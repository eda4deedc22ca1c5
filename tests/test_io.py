"""Readers and writers of nanomorph.io: real vendor files and files the tests write themselves."""

from __future__ import annotations

import csv
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

import nanomorph.io as nio
from nanomorph.io import MicrographError, read_micrographs
from nanomorph.io.units import UnitKind, classify_unit

SHARED_DM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dm"

# What each file listed in ../shared/data/dm/MANIFEST.csv must give (see its README):
# ("read", number of micrographs, shape of the first, pixel size in nm) or
# ("refuse", words the error must contain).
DM_EXPECTED: dict[str, tuple] = {
    "ncempy/dmTest_3D_int16_64,65,66.dm3": ("refuse", "too distorted"),
    "ncempy/dmTest_3D_int16_64,65,66.dm4": ("refuse", "too distorted"),
    # 2 Å on y, 1 nm on x: x stretched fivefold to 0.2 nm pixels.
    "ncempy/dmTest_float32_nonSquare_diffPixelSize.dm3": ("read", 1, (64, 640), 0.2),
    "ncempy/dmTest_float32_nonSquare_diffPixelSize.dm4": ("read", 1, (64, 640), 0.2),
    "rosettasciio/1D/test-EELS_spectrum.dm3": ("refuse", "spectrum"),
    "rosettasciio/2D/multi_signal.dm3": ("read", 1, (512, 512), 0.0177516),
    "rosettasciio/2D/test-10.dm4": ("refuse", "--pixel-size"),
    "rosettasciio/2D/test-2.dm3": ("refuse", "--pixel-size"),
    "rosettasciio/2D/test-2.dm4": ("refuse", "--pixel-size"),
    "rosettasciio/2D/test-23.dm3": ("refuse", "RGBA"),
    "rosettasciio/2D/test-6.dm3": ("refuse", "--pixel-size"),
    "rosettasciio/2D/test_STEM_image.dm3": ("read", 1, (68, 68), 0.248538),
    "rosettasciio/2D/test_diffraction_pattern.dm3": ("refuse", "reciprocal"),
    "rosettasciio/2D/test_fft_packed_complex8.dm4": ("refuse", "complex"),
    "rosettasciio/3D/test-2.dm4": ("refuse", "--pixel-size"),
    "rosettasciio/Fei HAADF-DE_location.dm3": ("read", 1, (4, 16), 5.50607),
    "rosettasciio/Fei HAADF-UK_location.dm3": ("read", 1, (4, 16), 5.50607),
    "rosettasciio/test_stackbuilder_imagestack.dm3": ("read", 3, (2, 16), 59.9829),
    "rosettasciio/tiff/test_dm_image_um_unit.dm3": ("read", 1, (68, 68), 168.675),
    "../particlespy-haadf/JEOL HAADF Image.dm4": ("read", 1, (112, 112), 1.24901),
}


def _manifest_paths() -> list[str]:
    manifest = SHARED_DM / "MANIFEST.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as handle:
        return sorted({row["path"] for row in csv.DictReader(handle)})


# ---------------------------------------------------------------- real DigitalMicrograph files


@pytest.mark.parametrize("relative", _manifest_paths())
def test_every_manifest_file_reads_calibrated_or_is_refused(shared_data: Path, relative: str):
    assert relative in DM_EXPECTED, f"no expectation written down for new file {relative}"
    path = shared_data / "dm" / relative
    expected = DM_EXPECTED[relative]
    if expected[0] == "refuse":
        with pytest.raises(MicrographError) as info:
            read_micrographs(path)
        message = str(info.value)
        assert expected[1] in message
        assert str(path) in message and "\n" not in message
        return
    _, n_frames, shape, pixel_nm = expected
    micrographs = read_micrographs(path)
    assert len(micrographs) == n_frames
    for index, micrograph in enumerate(micrographs):
        assert micrograph.image.dtype == np.float32
        assert micrograph.shape == shape
        assert micrograph.pixel_size_nm == pytest.approx(pixel_nm, rel=2e-5)
        assert micrograph.calibration_source == "dm tags"
        assert micrograph.n_frames == n_frames
        assert micrograph.frame == (None if n_frames == 1 else index)
        json.dumps(micrograph.metadata())  # metadata.json must be writable


def test_manifest_is_covered(shared_data: Path):
    assert set(_manifest_paths()) == set(DM_EXPECTED)


def test_non_square_dm_is_resampled_and_recorded(shared_data: Path):
    path = shared_data / "dm/ncempy/dmTest_float32_nonSquare_diffPixelSize.dm3"
    [micrograph] = read_micrographs(path)
    resampled = micrograph.raw_calibration["resampled"]
    assert resampled["from_shape"] == [64, 128]
    assert resampled["pixel_y_nm"] == pytest.approx(0.2)
    assert resampled["pixel_x_nm"] == pytest.approx(1.0)
    assert micrograph.raw_calibration["y"]["unit"] == "A"
    assert any("resampled" in note for note in micrograph.notes)
    # The test image is a ramp along x (mean 63.5 over 128 columns): bilinear keeps the range.
    assert micrograph.image.min() == pytest.approx(0.0)
    assert micrograph.image.max() == pytest.approx(127.0)


def test_multi_signal_skips_the_line_plot(shared_data: Path):
    [micrograph] = read_micrographs(shared_data / "dm/rosettasciio/2D/multi_signal.dm3")
    assert micrograph.frame is None
    assert any("1-D" in note for note in micrograph.notes)


def test_dm_stack_gives_one_micrograph_per_frame(shared_data: Path):
    path = shared_data / "dm/ncempy/dmTest_3D_int16_64,65,66.dm4"
    micrographs = read_micrographs(path, pixel_size_nm=0.5)
    assert len(micrographs) == 66
    assert [m.frame for m in micrographs] == list(range(66))
    assert micrographs[7].name == "dmTest_3D_int16_64,65,66/frame_0007"
    assert micrographs[7].shape == (65, 64)
    assert micrographs[7].calibration_source == "user"
    assert micrographs[7].raw_calibration["frame_axis"]["unit"] == "um"
    assert micrographs[7].time_s is None  # z is in µm, not a time axis
    # ncempy's test stack holds the column index in every pixel of every frame.
    np.testing.assert_array_equal(micrographs[65].image[40], np.arange(64, dtype=np.float32))


def test_uncalibrated_dm_with_user_pixel_size_or_without_requirement(shared_data: Path):
    path = shared_data / "dm/rosettasciio/3D/test-2.dm4"
    frames = read_micrographs(path, pixel_size_nm=0.3)
    assert [m.frame for m in frames] == [0, 1]
    assert all(m.pixel_size_nm == 0.3 and m.calibration_source == "user" for m in frames)
    [single] = read_micrographs(
        shared_data / "dm/rosettasciio/2D/test-2.dm3", require_calibration=False
    )
    assert single.pixel_size_nm is None
    assert single.calibration_source == "none"
    assert single.shape == (2, 2)


def test_user_pixel_size_overrides_file_and_keeps_it(shared_data: Path):
    path = shared_data / "dm/rosettasciio/2D/test_STEM_image.dm3"
    [micrograph] = read_micrographs(path, pixel_size_nm=0.3)
    assert micrograph.pixel_size_nm == 0.3
    assert micrograph.calibration_source == "user"
    assert micrograph.raw_calibration["pixel_x_nm"] == pytest.approx(0.248538, rel=2e-5)
    assert micrograph.raw_calibration["source"] == "dm tags"


def test_hyperspy_file(shared_data: Path):
    [micrograph] = read_micrographs(shared_data / "particlespy-haadf" / "SiO2 HAADF Image.hspy")
    assert micrograph.shape == (128, 128)
    assert micrograph.pixel_size_nm == pytest.approx(8.552, rel=1e-4)
    assert micrograph.calibration_source == "hspy axes"


# ---------------------------------------------------------------- writers and round trips


def _test_image(shape=(40, 50), dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 4000, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_calibrated_tiff_round_trip(tmp_path: Path, dtype):
    image = _test_image(dtype=np.uint8 if dtype == np.uint8 else np.uint16).astype(dtype)
    path = nio.write_calibrated_tiff(tmp_path / "a.tif", image, 0.248538)
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(0.248538, rel=1e-6)
    assert micrograph.calibration_source == "ImageJ tags"
    np.testing.assert_array_equal(micrograph.image, image.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]  # no temp file left
    with tifffile.TiffFile(path) as tif:  # what ImageJ/Fiji will see
        assert tif.imagej_metadata["unit"] == "nm"


def test_calibrated_tiff_stack_has_frames_and_times(tmp_path: Path):
    stack = _test_image(shape=(3, 20, 30)).astype(np.float32)
    path = nio.write_calibrated_tiff(tmp_path / "s.tif", stack, 1.5, metadata={"finterval": 0.5})
    micrographs = read_micrographs(path)
    assert [m.frame for m in micrographs] == [0, 1, 2]
    assert [m.time_s for m in micrographs] == [0.0, 0.5, 1.0]
    assert micrographs[2].name == "s/frame_0002"
    np.testing.assert_array_equal(micrographs[1].image, stack[1])


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch):
    def broken_imwrite(path, *args, **kwargs):
        Path(path).write_bytes(b"half a tiff")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(OSError):
        nio.write_calibrated_tiff(tmp_path / "a.tif", _test_image(), 1.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", [3, 4])
def test_dm_round_trip(tmp_path: Path, version: int):
    pytest.importorskip("nionswift_plugin.DM_IO.dm3_image_utils")
    image = _test_image().astype(np.float32)
    path = nio.write_dm(tmp_path / f"a.dm{version}", image, 0.37, version=version)
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(0.37, rel=1e-6)
    assert micrograph.calibration_source == "dm tags"
    np.testing.assert_array_equal(micrograph.image, image)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a.dm{version}"]


def test_writers_reject_bad_input(tmp_path: Path):
    with pytest.raises(ValueError, match="pixel size"):
        nio.write_calibrated_tiff(tmp_path / "a.tif", _test_image(), 0.0)
    with pytest.raises(ValueError, match="version"):
        nio.write_dm(tmp_path / "a.dm5", _test_image(), 1.0, version=5)
    with pytest.raises(ValueError, match="shape"):
        nio.write_calibrated_tiff(tmp_path / "a.tif", np.zeros(5), 1.0)


@pytest.mark.parametrize(
    ("unit", "per_unit", "expected_nm"),
    [("CENTIMETER", 1e7 / 2.5, 2.5), ("INCH", 2.54e7 / 2.5, 2.5), ("CENTIMETER", 1e7 / 0.1, 0.1)],
)
def test_tiff_resolution_unit(tmp_path: Path, unit: str, per_unit: float, expected_nm: float):
    path = tmp_path / "r.tif"
    tifffile.imwrite(path, _test_image(), resolution=(per_unit, per_unit), resolutionunit=unit)
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(expected_nm, rel=1e-6)
    assert micrograph.calibration_source == "TIFF resolution tags"


def test_tiff_print_resolution_is_not_a_calibration(tmp_path: Path):
    path = tmp_path / "print.tif"
    tifffile.imwrite(path, _test_image(), resolution=(300, 300), resolutionunit="INCH")
    with pytest.raises(MicrographError, match="--pixel-size"):
        read_micrographs(path)
    [micrograph] = read_micrographs(path, pixel_size_nm=1.0)
    assert any("print resolution" in note for note in micrograph.notes)


def test_tiff_non_square_resolution_is_resampled(tmp_path: Path):
    path = tmp_path / "ns.tif"
    # 1 nm per pixel in x, 2 nm per pixel in y: rows are doubled.
    tifffile.imwrite(
        path, _test_image((10, 30)), resolution=(1e7, 5e6), resolutionunit="CENTIMETER"
    )
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(1.0)
    assert micrograph.shape == (20, 30)


def test_tiff_fei_and_zeiss_tags(tmp_path: Path):
    fei = "[User]\nUser=test\n[Scan]\nPixelWidth=2.5e-09\nPixelHeight=2.5e-09\n"
    path = tmp_path / "fei.tif"
    tifffile.imwrite(path, _test_image(), extratags=[(34682, "s", 0, fei, True)])
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(2.5)
    assert micrograph.calibration_source == "FEI metadata"

    zeiss = "AP_IMAGE_PIXEL_SIZE\nImage Pixel Size = 1.25 nm\n"
    path = tmp_path / "zeiss.tif"
    tifffile.imwrite(path, _test_image(), extratags=[(34118, "s", 0, zeiss, True)])
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(1.25)
    assert micrograph.calibration_source == "Zeiss SEM metadata"


def test_imagej_reciprocal_unit_is_refused(tmp_path: Path):
    path = tmp_path / "fft.tif"
    tifffile.imwrite(
        path,
        _test_image().astype(np.float32),
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"unit": "1/nm"},
    )
    with pytest.raises(MicrographError, match="reciprocal"):
        read_micrographs(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_png_and_jpeg_need_a_pixel_size(tmp_path: Path, suffix: str):
    from PIL import Image

    path = tmp_path / f"plain{suffix}"
    Image.fromarray(_test_image(dtype=np.uint8) // 16 * 16).save(path)
    with pytest.raises(MicrographError, match="--pixel-size") as info:
        read_micrographs(path)
    assert str(path) in str(info.value)
    [micrograph] = read_micrographs(path, pixel_size_nm=0.8)
    assert micrograph.pixel_size_nm == 0.8
    assert micrograph.calibration_source == "user"
    assert micrograph.shape == (40, 50)


def test_rgb_tiff_becomes_grey_with_a_warning(tmp_path: Path):
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[..., 0] = 100
    rgb[5:, :, 1] = 200
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    with pytest.warns(UserWarning, match="grey"):
        [micrograph] = read_micrographs(path, pixel_size_nm=1.0)
    expected = 0.2125 * 100 + 0.7154 * 200
    assert micrograph.image[10, 10] == pytest.approx(expected, rel=1e-5)
    assert micrograph.image[0, 0] == pytest.approx(0.2125 * 100, rel=1e-5)
    assert any("grey" in note for note in micrograph.notes)


def test_grey_stored_as_rgb_needs_no_warning(tmp_path: Path):
    grey = _test_image(dtype=np.uint8)
    path = tmp_path / "greyrgb.tif"
    tifffile.imwrite(path, np.stack([grey] * 3, axis=-1), photometric="rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [micrograph] = read_micrographs(path, pixel_size_nm=1.0)
    np.testing.assert_array_equal(micrograph.image, grey.astype(np.float32))


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.where(np.eye(8, dtype=bool), np.nan, 1.0).astype(np.float32), "NaN"),
        (np.full((8, 8), 3.0, dtype=np.float32), "same value"),
    ],
)
def test_nan_and_constant_images_are_refused(tmp_path: Path, image: np.ndarray, words: str):
    path = nio.write_calibrated_tiff(tmp_path / "bad.tif", image, 1.0)
    with pytest.raises(MicrographError, match=words):
        read_micrographs(path)


@pytest.mark.parametrize("suffix", [".dm3", ".dm4", ".tif", ".emd", ".ser", ".png", ".hspy"])
def test_random_bytes_give_a_clear_error(tmp_path: Path, suffix: str):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(MicrographError) as info:
        read_micrographs(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert "\n" not in message
    if suffix == ".emd":
        assert "cannot be read as an EMD" in message


def test_a_file_cut_short_is_one_error_not_the_library_log(tmp_path: Path, caplog):
    # A copy that stopped partway: the header is there, the pixels are not.
    whole = nio.write_calibrated_tiff(tmp_path / "whole.tif", _test_image(shape=(64, 64)), 1.0)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:3000])
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MicrographError, match=r"cut\.tif: cannot be read as a TIFF file"):
        nio.read_frame(cut, 0)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("tifffile")] == []
    assert logging.getLogger("tifffile").level == logging.NOTSET  # put back after reading


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(MicrographError, match="unsupported file type"):
        read_micrographs(tmp_path / "notes.txt")
    with pytest.raises(MicrographError, match="no such file"):
        read_micrographs(tmp_path / "missing.dm3")
    path = nio.write_calibrated_tiff(tmp_path / "a.tif", _test_image(), 1.0)
    for bad in (0, -1.0, float("nan"), "abc"):
        with pytest.raises(MicrographError, match="pixel size"):
            read_micrographs(path, pixel_size_nm=bad)


def test_iter_checks_at_call_and_yields_lazily(tmp_path: Path):
    from PIL import Image

    png = tmp_path / "plain.png"
    Image.fromarray(_test_image(dtype=np.uint8)).save(png)
    with pytest.raises(MicrographError):
        nio.iter_micrographs(png)  # refused before any iteration
    stack = _test_image(shape=(4, 10, 12))
    path = nio.write_calibrated_tiff(tmp_path / "s.tif", stack, 2.0)
    frames = nio.iter_micrographs(path)
    assert not isinstance(frames, list)
    assert [m.frame for m in frames] == [0, 1, 2, 3]


def test_berkeley_emd(tmp_path: Path):
    from ncempy.io import emd

    path = tmp_path / "b.emd"
    image = _test_image().astype(np.float32)
    with emd.fileEMD(path, readonly=False) as handle:
        dims = emd.defaultDims(image, pixel_size=(0.5, 0.5), pixel_unit=("nm", "nm"))
        handle.put_emdgroup("image", image, dims)
    [micrograph] = read_micrographs(path)
    assert micrograph.pixel_size_nm == pytest.approx(0.5)
    assert micrograph.calibration_source == "berkeley emd dims"
    np.testing.assert_array_equal(micrograph.image, image)


def _velox_metadata(pixel_m: float) -> np.ndarray:
    text = json.dumps(
        {
            "BinaryResult": {
                "PixelSize": {"width": str(pixel_m), "height": str(pixel_m)},
                "PixelUnitX": "m",
                "PixelUnitY": "m",
                "Detector": "HAADF",
            },
            "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "0"}},
            "Stage": {},
            "CustomProperties": {},
        }
    ).encode()
    return np.frombuffer(text, dtype=np.uint8)


def test_velox_emd_stack(tmp_path: Path):
    import h5py

    path = tmp_path / "v.emd"
    stack = _test_image(shape=(20, 30, 2)).astype(np.uint16)  # Velox: rows, columns, frames
    meta = _velox_metadata(1.5e-9)
    with h5py.File(path, "w") as h5:
        group = h5.create_group("Data/Image/6a0f")
        group["Data"] = stack
        group["Metadata"] = np.stack([meta, meta], axis=1)
    micrographs = read_micrographs(path)
    assert [m.frame for m in micrographs] == [0, 1]
    assert micrographs[1].pixel_size_nm == pytest.approx(1.5)
    assert micrographs[1].calibration_source == "velox emd metadata"
    np.testing.assert_array_equal(micrographs[1].image, stack[:, :, 1])


def test_written_velox_emd_reads_back_frame_by_frame(tmp_path: Path):
    from nanomorph.io import count_frames, read_frame, write_velox_emd

    stack = _test_image(shape=(3, 20, 30)).astype(np.uint16)
    path = write_velox_emd(tmp_path / "series.emd", stack, 0.37, detector="BF")
    assert count_frames(path) == 3
    frame = read_frame(path, 2)
    np.testing.assert_array_equal(frame.image, stack[2])
    assert frame.pixel_size_nm == pytest.approx(0.37)
    assert frame.raw_calibration["detector"] == "BF"
    [single] = read_micrographs(write_velox_emd(tmp_path / "one.emd", stack[0], 2.5))
    assert single.frame is None and single.pixel_size_nm == pytest.approx(2.5)
    np.testing.assert_array_equal(single.image, stack[0])
    with pytest.raises(ValueError, match="pixel size"):
        write_velox_emd(tmp_path / "bad.emd", stack[0], 0.0)
    assert not (tmp_path / "bad.emd").exists()


@pytest.mark.parametrize(
    ("unit", "kind", "factor"),
    [
        ("pm", UnitKind.LENGTH, 1e-3),
        ("Å", UnitKind.LENGTH, 0.1),
        ("A", UnitKind.LENGTH, 0.1),
        ("Angstrom", UnitKind.LENGTH, 0.1),
        ("nm", UnitKind.LENGTH, 1.0),
        ("µm", UnitKind.LENGTH, 1e3),
        ("um", UnitKind.LENGTH, 1e3),
        ("micron", UnitKind.LENGTH, 1e3),
        ("mm", UnitKind.LENGTH, 1e6),
        ("m", UnitKind.LENGTH, 1e9),
        ("[n_m]", UnitKind.LENGTH, 1.0),
        ("1/nm", UnitKind.RECIPROCAL, None),
        ("1/Å", UnitKind.RECIPROCAL, None),
        ("eV", UnitKind.ENERGY, None),
        ("mrad", UnitKind.ANGLE, None),
        ("s", UnitKind.TIME, 1.0),
        ("", UnitKind.NONE, None),
        ("pixel", UnitKind.NONE, None),
        ("furlong", UnitKind.UNKNOWN, None),
    ],
)
def test_units(unit: str, kind: UnitKind, factor):
    assert classify_unit(unit) == (kind, factor)


def test_supported_suffixes():
    assert set(nio.SUPPORTED_SUFFIXES) == {
        ".dm3",
        ".dm4",
        ".ser",
        ".emd",
        ".tif",
        ".tiff",
        ".png",
        ".jpg",
        ".jpeg",
        ".hspy",
    }
    assert all(s == s.lower() for s in nio.SUPPORTED_SUFFIXES)


def test_frame_axis_in_seconds_gives_times(tmp_path: Path):
    from nanomorph.io._core import Axis, block_from_array, micrographs_from_blocks

    stack = _test_image(shape=(3, 8, 9)).astype(np.float32)
    block = block_from_array(
        stack, "0", Axis(2.0, "Å"), Axis(2.0, "Å"), "test", frame_axis=Axis(250.0, "ms")
    )
    frames = list(micrographs_from_blocks(tmp_path / "x.dm4", [block], None, True))
    assert [m.time_s for m in frames] == [0.0, 0.25, 0.5]
    assert frames[2].pixel_size_nm == pytest.approx(0.2)


def test_metadata_of_every_format_is_json(tmp_path: Path):
    path = nio.write_calibrated_tiff(tmp_path / "a.tif", _test_image(), 0.5)
    fei = "[Scan]\nPixelWidth=2.5e-09\n"
    fei_path = tmp_path / "fei.tif"
    tifffile.imwrite(fei_path, _test_image(), extratags=[(34682, "s", 0, fei, True)])
    for micrograph in read_micrographs(path) + read_micrographs(fei_path):
        json.dumps(micrograph.metadata())


# ------------------------------------------------------------------ one frame of a long series
def _write_ser(path: Path, frames: np.ndarray, pixel_m: float, times_s: list[int]) -> Path:
    """A TIA .ser series of 2-D float32 elements with time tags, as ncempy reads them."""
    n, height, width = frames.shape
    header = np.array([0x4949, 0x0197, 0x0210], "<i2").tobytes()
    header += np.array([0x4122, 0x4152, n, n], "<i4").tobytes()
    dimension = np.array([n], "<i4").tobytes() + np.array([0.0, 1.0], "<f8").tobytes()
    dimension += np.array([0, 4], "<i4").tobytes() + b"Time" + np.array([1], "<i4").tobytes() + b"s"
    start = len(header) + 4 + 4 + len(dimension)
    elements, data_offsets, tag_offsets = b"", [], []
    for frame in frames:
        data_offsets.append(start + len(elements))
        element = np.array([0.0, pixel_m], "<f8").tobytes() + np.array([0], "<i4").tobytes()
        element += np.array([0.0, pixel_m], "<f8").tobytes() + np.array([0], "<i4").tobytes()
        element += np.array([7], "<i2").tobytes() + np.array([width, height], "<i4").tobytes()
        # ncempy flips the rows it reads (TIA stores the bottom row first).
        elements += element + np.flipud(frame).astype("<f4").tobytes()
    for time_s in times_s:
        tag_offsets.append(start + len(elements))
        elements += np.array([0x4152, time_s], "<i4").tobytes()
    offset_array = start + len(elements)
    path.write_bytes(
        header
        + np.array([offset_array, 1], "<i4").tobytes()
        + dimension
        + elements
        + np.array(data_offsets + tag_offsets, "<i4").tobytes()
    )
    return path


def _write_velox(path: Path, stack_yxn: np.ndarray, pixel_m: float = 1.5e-9) -> Path:
    import h5py

    meta = _velox_metadata(pixel_m)
    with h5py.File(path, "w") as h5:
        group = h5.create_group("Data/Image/6a0f")
        group["Data"] = stack_yxn
        group["Metadata"] = np.stack([meta] * stack_yxn.shape[-1], axis=1)
    return path


def test_ser_series_gives_calibrated_frames_with_their_times(tmp_path: Path):
    frames = _test_image(shape=(3, 20, 30)).astype(np.float32)
    path = _write_ser(tmp_path / "series.ser", frames, 0.25e-9, [100, 102, 105])
    micrographs = read_micrographs(path)
    assert [m.frame for m in micrographs] == [0, 1, 2]
    assert [m.time_s for m in micrographs] == [0.0, 2.0, 5.0]
    assert micrographs[2].pixel_size_nm == pytest.approx(0.25)
    assert micrographs[2].calibration_source == "ser calibration"
    for micrograph, frame in zip(micrographs, frames, strict=True):
        np.testing.assert_array_equal(micrograph.image, frame)


def _stack_files(tmp_path: Path) -> dict[str, Path]:
    stack = _test_image(shape=(4, 20, 30))
    imagej = tmp_path / "imagej.tif"
    tifffile.imwrite(
        imagej,
        stack,
        imagej=True,
        photometric="minisblack",
        metadata={"axes": "TYX", "finterval": 2.0},
    )
    hyperstack = tmp_path / "hyper.tif"
    tifffile.imwrite(
        hyperstack,
        stack.reshape(2, 2, 20, 30),
        imagej=True,
        photometric="minisblack",
        metadata={"axes": "TZYX"},
    )
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, stack, photometric="minisblack")
    from ncempy.io import emd

    berkeley = tmp_path / "berkeley.emd"
    with emd.fileEMD(berkeley, readonly=False) as handle:
        dims = emd.defaultDims(stack, pixel_size=(2.0, 0.5, 0.5), pixel_unit=("s", "nm", "nm"))
        handle.put_emdgroup("series", stack, dims)
    import h5py

    hspy = tmp_path / "series.hspy"
    with h5py.File(hspy, "w") as h5:
        group = h5.create_group("Experiments/series")
        group["data"] = stack.reshape(2, 2, 20, 30)  # two navigation axes, flattened to 4 frames
        for i, (name, units, navigate) in enumerate(
            [("t", "s", True), ("z", "nm", True), ("y", "nm", False), ("x", "nm", False)]
        ):
            axis = group.create_group(f"axis-{i}")
            axis.attrs.update({"name": name, "units": units, "scale": 0.5, "navigate": navigate})
    return {
        "series.hspy": hspy,
        "berkeley.emd": berkeley,
        "imagej.tif": imagej,
        "hyper.tif": hyperstack,
        "plain.tif": plain,
        "velox.emd": _write_velox(tmp_path / "velox.emd", np.moveaxis(stack, 0, -1)),
        "series.ser": _write_ser(
            tmp_path / "series.ser", stack.astype(np.float32), 2e-10, [0, 1, 2, 3]
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "imagej.tif",
        "hyper.tif",
        "plain.tif",
        "velox.emd",
        "berkeley.emd",
        "series.ser",
        "series.hspy",
    ],
)
def test_read_frame_reads_that_frame_alone_and_gives_what_the_whole_file_gives(tmp_path, name):
    from nanomorph.io import emd, hspy, ser, tiff

    path = _stack_files(tmp_path)[name]
    reader = {
        ".tif": tiff.read_tiff_blocks,
        ".emd": emd.read_emd_blocks,
        ".ser": ser.read_ser_blocks,
        ".hspy": hspy.read_hspy_blocks,
    }
    [block] = reader[path.suffix](path)
    # A series' frame k is read from disk alone, not with the others.
    assert block.load_frame is not None
    np.testing.assert_array_equal(block.load_frame(3), np.asarray(block.load())[3])
    every = read_micrographs(path, pixel_size_nm=0.5)
    assert len(every) == nio.count_frames(path) == 4
    for k, expected in enumerate(every):
        got = nio.read_frame(path, k, pixel_size_nm=0.5)
        np.testing.assert_array_equal(got.image, expected.image)
        assert (got.name, got.frame, got.n_frames, got.time_s) == (
            expected.name,
            expected.frame,
            expected.n_frames,
            expected.time_s,
        )


def test_read_frame_of_a_dm_stack_is_its_frame(shared_data: Path):
    path = shared_data / "dm/ncempy/dmTest_3D_int16_64,65,66.dm4"
    frame = nio.read_frame(path, 65, pixel_size_nm=0.5)
    assert (frame.name, frame.frame, frame.n_frames) == (
        "dmTest_3D_int16_64,65,66/frame_0065",
        65,
        66,
    )
    np.testing.assert_array_equal(frame.image[40], np.arange(64, dtype=np.float32))


def test_read_frame_converts_no_other_frame(tmp_path: Path):
    from nanomorph.io._core import Axis, ImageBlock, micrographs_from_blocks

    def load():
        raise AssertionError("the whole stack was loaded")

    block = ImageBlock(
        label="0",
        shape=(1000, 8, 8),
        dtype=np.dtype(np.float32),
        load=load,
        load_frame=lambda k: np.full((8, 8), float(k), np.float32) + np.eye(8, dtype=np.float32),
        y=Axis(0.1, "nm", "y"),
        x=Axis(0.1, "nm", "x"),
        calibration_source="test",
    )
    [frame] = micrographs_from_blocks(tmp_path / "s.dm4", [block], None, True, only_frame=999)
    assert (frame.frame, frame.n_frames, frame.image[0, 1]) == (999, 1000, 999.0)
    assert (
        list(micrographs_from_blocks(tmp_path / "s.dm4", [block], None, True, only_frame=1000))
        == []
    )


def test_read_frame_past_the_end_or_negative_names_the_file(tmp_path: Path):
    path = _stack_files(tmp_path)["imagej.tif"]
    with pytest.raises(MicrographError, match=r"imagej\.tif: has no frame 4 \(it has 4, from 0\)"):
        nio.read_frame(path, 4, pixel_size_nm=0.5)
    with pytest.raises(MicrographError, match=r"imagej\.tif: frame -1 is negative"):
        nio.read_frame(path, -1, pixel_size_nm=0.5)
    [single] = read_micrographs(nio.write_calibrated_tiff(tmp_path / "one.tif", _test_image(), 0.2))
    assert nio.read_frame(tmp_path / "one.tif", 0).frame is None


def test_counting_frames_converts_none_so_a_bad_frame_is_refused_when_it_is_read(tmp_path: Path):
    stack = _test_image(shape=(20, 30, 3))
    stack[:, :, 1] = 7  # a blank frame: no image
    path = _write_velox(tmp_path / "blank.emd", stack)
    assert nio.count_frames(path) == 3
    assert nio.read_frame(path, 2).frame == 2
    with pytest.raises(
        MicrographError, match=r"blank\.emd: frame 1: all pixels have the same value"
    ):
        nio.read_frame(path, 1)


def test_dm_datasets_are_described_from_the_header_as_ncempy_reads_them(shared_data: Path):
    # Opening (and counting) a DM file reads no pixels: the shape, type and calibration come
    # from its header, and must be what ncempy's getDataset gives with the pixels.
    from ncempy.io import dm as ncempy_dm

    from nanomorph.io.dm import _header_dataset, quiet_ncempy

    files = sorted((shared_data / "dm").rglob("*.dm[34]"))
    files.append(shared_data / "particlespy-haadf/JEOL HAADF Image.dm4")
    described = 0
    for path in files:
        with quiet_ncempy(), ncempy_dm.fileDM(path) as dm_file:
            n_datasets = 1 if dm_file.numObjects == 1 else dm_file.numObjects - 1
            for index in range(n_datasets):
                try:
                    dataset = dm_file.getDataset(index)
                except OSError:
                    with pytest.raises(OSError):
                        _header_dataset(dm_file, index)
                    continue
                shape, dtype, sizes, units = _header_dataset(dm_file, index)
                assert shape == dataset["data"].shape, path
                assert dtype == dataset["data"].dtype, path
                assert list(sizes) == list(dataset["pixelSize"]), path
                assert list(units) == list(dataset["pixelUnit"]), path
                described += 1
    assert described >= 15


def test_a_dm_stack_frame_is_read_alone(shared_data: Path):
    from nanomorph.io.dm import read_dm_blocks

    [block] = read_dm_blocks(shared_data / "dm/ncempy/dmTest_3D_int16_64,65,66.dm4")
    assert block.load_frame is not None
    np.testing.assert_array_equal(block.load_frame(65), np.asarray(block.load())[65])
