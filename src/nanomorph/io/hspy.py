"""HyperSpy .hspy files (HDF5): ``/Experiments/<title>/data`` with ``axis-<i>`` calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._core import Axis, ImageBlock, Refusal

SUFFIXES = (".hspy",)
CALIBRATION_SOURCE = "hspy axes"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _axis(attrs: Any) -> Axis:
    scale = attrs.get("scale")
    return Axis(
        None if scale is None else float(scale),
        _text(attrs.get("units", "")),
        _text(attrs.get("name", "")),
    )


def read_hspy_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """Every signal in a HyperSpy file whose last two axes are signal (image) axes.

    HyperSpy stores one ``axis-<i>`` group per array dimension ``i``; navigation axes (those with
    ``navigate`` true) come first and become frames.

    Parameters
    ----------
    path
        A .hspy file.

    Returns
    -------
    list
        One :class:`ImageBlock` per experiment, or a :class:`Refusal` for odd layouts.

    Raises
    ------
    OSError
        From h5py when the file is not HDF5 (wrapped by the public readers).
    """
    import h5py

    entries: list[ImageBlock | Refusal] = []
    with h5py.File(path, "r") as h5:
        if "Experiments" not in h5:
            return [Refusal("file", "it is not a HyperSpy file (no /Experiments group)")]
        for title, group in h5["Experiments"].items():
            if not isinstance(group, h5py.Group) or "data" not in group:
                continue
            dataset = group["data"]
            shape = tuple(int(n) for n in dataset.shape)
            axes = [
                _axis(group[f"axis-{i}"].attrs) if f"axis-{i}" in group else Axis(None)
                for i in range(len(shape))
            ]
            navigate = [
                bool(group[f"axis-{i}"].attrs.get("navigate", False))
                if f"axis-{i}" in group
                else False
                for i in range(len(shape))
            ]
            n_signal = navigate.count(False)
            if len(shape) >= 2 and (n_signal != 2 or any(navigate[-2:])):
                entries.append(
                    Refusal(title, f"it has {n_signal} signal axes; an image needs exactly 2")
                )
                continue
            lead = shape[:-2]
            n_frames = int(np.prod(lead)) if lead else 1
            out_shape = (n_frames, *shape[-2:]) if lead else shape
            frame_axis = axes[0] if len(lead) == 1 else None

            def load(name: str = title, s: tuple[int, ...] = out_shape) -> np.ndarray:
                with h5py.File(path, "r") as again:
                    return np.asarray(again["Experiments"][name]["data"][()]).reshape(s)

            def load_frame(k: int, name: str = title, lead: tuple[int, ...] = lead) -> np.ndarray:
                # Frame k of the flattened leading axes, in the order reshape flattens them.
                with h5py.File(path, "r") as again:
                    return np.asarray(again["Experiments"][name]["data"][np.unravel_index(k, lead)])

            y, x = (axes[-2], axes[-1]) if len(shape) >= 2 else (Axis(None), axes[-1])
            entries.append(
                ImageBlock(
                    label=title,
                    shape=out_shape,
                    dtype=np.dtype(dataset.dtype),
                    load=load,
                    load_frame=load_frame if lead else None,
                    y=y,
                    x=x,
                    calibration_source=CALIBRATION_SOURCE,
                    frame_axis=frame_axis,
                    uncalibrated_reason="the HyperSpy file has no length units on its image axes",
                )
            )
    return entries
