"""EMD files: Berkeley EMD (HDF5, ``emd_group_type`` groups) and Thermo Fisher Velox EMD,
both through ncempy (``ncempy.io.emd`` and ``ncempy.io.emdVelox``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._core import Axis, ImageBlock, Refusal
from .dm import quiet_ncempy

SUFFIXES = (".emd",)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _hdf5_loader(path: Path, dataset_name: str):
    def load() -> np.ndarray:
        import h5py

        with h5py.File(path, "r") as h5:
            return np.asarray(h5[dataset_name][()])

    return load


def _hdf5_frame_loader(path: Path, dataset_name: str, frame_axis: int = 0):
    def load_frame(k: int) -> np.ndarray:
        import h5py

        with h5py.File(path, "r") as h5:
            dataset = h5[dataset_name]
            where = tuple(k if axis == frame_axis else slice(None) for axis in range(dataset.ndim))
            return np.asarray(dataset[where])

    return load_frame


def _berkeley(path: Path) -> list[ImageBlock | Refusal]:
    from ncempy.io import emd

    entries: list[ImageBlock | Refusal] = []
    with quiet_ncempy(), emd.fileEMD(path, readonly=True) as emd_file:
        for index, group in enumerate(emd_file.list_emds):
            label = group.name.split("/")[-1] or str(index)
            # ncempy's get_emdgroup reads the pixels; the dataset is kept unread instead.
            try:
                dataset = group["data"]
                dims = emd_file.get_emddims(group)
            except (KeyError, TypeError, ValueError):
                entries.append(Refusal(label, "its data is not in the EMD layout"))
                continue
            axes = []
            for vector, name, unit in dims:
                vector = np.asarray(vector, dtype=float)
                scale = float(vector[1] - vector[0]) if vector.size > 1 else None
                axes.append(Axis(scale, _text(unit), _text(name)))
            shape = tuple(int(n) for n in dataset.shape)
            if len(shape) >= 2:
                y, x = axes[-2], axes[-1]
            else:
                y, x = Axis(None), axes[-1]
            entries.append(
                ImageBlock(
                    label=label,
                    shape=shape,
                    dtype=np.dtype(dataset.dtype),
                    load=_hdf5_loader(path, dataset.name),
                    load_frame=_hdf5_frame_loader(path, dataset.name) if len(shape) == 3 else None,
                    y=y,
                    x=x,
                    calibration_source="berkeley emd dims",
                    frame_axis=axes[0] if len(shape) == 3 else None,
                    uncalibrated_reason="the EMD dims carry no length units",
                )
            )
    return entries


def _velox_loader(path: Path, dataset_name: str):
    """The whole dataset, frames first (Velox stores rows, columns, frames)."""
    read = _hdf5_loader(path, dataset_name)

    def load() -> np.ndarray:
        data = read()
        if data.ndim == 3:
            data = np.moveaxis(data, -1, 0)
            if data.shape[0] == 1:
                data = data[0]
        return data

    return load


def _velox(path: Path) -> list[ImageBlock | Refusal]:
    from ncempy.io import emdVelox

    entries: list[ImageBlock | Refusal] = []
    with quiet_ncempy(), emdVelox.fileEMDVelox(path) as velox:
        for index, group in enumerate(velox.list_data):
            label = group.name.split("/")[-1] or str(index)
            meta = velox.parseMetaData(group)
            binary = velox.metaDataJSON.get("BinaryResult", {})
            # ncempy gives (x, y) in nm when the file says m
            size_x, size_y = (float(v) for v in meta["pixelSize"])
            unit_x, unit_y = (str(u) for u in meta["pixelUnit"])
            # Velox stores images as (rows, columns, frames); the pixels are read only when a
            # frame is needed, one frame at a time where only one is.
            dataset = group["Data"]
            stored = tuple(int(n) for n in dataset.shape)
            shape = stored
            if len(stored) == 3:
                shape = (stored[2], *stored[:2]) if stored[2] > 1 else stored[:2]
            entries.append(
                ImageBlock(
                    label=label,
                    shape=shape,
                    dtype=np.dtype(dataset.dtype),
                    load=_velox_loader(path, dataset.name),
                    load_frame=(
                        _hdf5_frame_loader(path, dataset.name, frame_axis=2)
                        if len(shape) == 3
                        else None
                    ),
                    y=Axis(size_y, unit_y, "y"),
                    x=Axis(size_x, unit_x, "x"),
                    calibration_source="velox emd metadata",
                    uncalibrated_reason="the Velox metadata carries no pixel size",
                    extra_raw={
                        "detector": str(meta.get("detectorName", "")),
                        "PixelSize": binary.get("PixelSize"),
                        "PixelUnitX": binary.get("PixelUnitX"),
                        "PixelUnitY": binary.get("PixelUnitY"),
                    },
                )
            )
    return entries


def read_emd_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """Every image group of an EMD file, trying Berkeley EMD first and then Velox.

    Parameters
    ----------
    path
        A .emd file.

    Returns
    -------
    list
        One :class:`ImageBlock` per data group (Berkeley) or image (Velox).

    Raises
    ------
    OSError, KeyError
        From h5py/ncempy when the file is neither kind of EMD (wrapped by the public readers).
    """
    import h5py
    from ncempy.io import emd

    with h5py.File(path, "r") as h5:
        is_velox = "Data" in h5 and "Image" in h5["Data"]
        has_spectra = "Data" in h5 and any(k != "Image" for k in h5["Data"])
    if not is_velox:
        try:
            return _berkeley(path)
        except emd.NoEmdDataSets:
            if has_spectra:
                return [Refusal("file", "it holds no images (Velox spectra only?)")]
            return [Refusal("file", "it holds neither Berkeley EMD data groups nor Velox images")]
    return _velox(path)
