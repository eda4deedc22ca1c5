"""Classify the axis units that microscope files use and convert lengths to nanometres."""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["UnitKind", "classify_unit", "length_unit_to_nm"]


class UnitKind(Enum):
    """What an axis unit says about the data along that axis."""

    LENGTH = "length"
    NONE = "none"  # no calibration: empty, "pixel", or a writer's placeholder
    RECIPROCAL = "reciprocal"
    ENERGY = "energy"
    ANGLE = "angle"
    TIME = "time"
    UNKNOWN = "unknown"


# Factors to nanometres. Keys are normalised by _normalise (lower case, no brackets/underscores).
_LENGTH_TO_NM: dict[str, float] = {
    "pm": 1e-3,
    "picometer": 1e-3,
    "picometre": 1e-3,
    "å": 0.1,
    "a": 0.1,
    "ang": 0.1,
    "angstrom": 0.1,
    "ångström": 0.1,
    "ångstrom": 0.1,
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "µm": 1e3,  # micro sign U+00B5
    "μm": 1e3,  # Greek mu U+03BC
    "um": 1e3,
    "micron": 1e3,
    "micrometer": 1e3,
    "micrometre": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "millimetre": 1e6,
    "cm": 1e7,
    "inch": 2.54e7,
    "m": 1e9,
    "meter": 1e9,
    "metre": 1e9,
}

# Factors to seconds, for the frame axis of time series.
_TIME_TO_S: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "ms": 1e-3,
    "µs": 1e-6,
    "μs": 1e-6,
    "us": 1e-6,
    "ns": 1e-9,
    "min": 60.0,
    "h": 3600.0,
}

_NONE = {"", "pixel", "px", "pix", "pixels", "<auto>", "none", "unitless", "a.u.", "au"}
_ENERGY = {"ev", "kev", "mev", "gev"}
_ANGLE = {"rad", "mrad", "µrad", "μrad", "urad", "deg", "degree", "°"}


def _normalise(unit: str) -> str:
    text = str(unit).strip()
    # Berkeley EMD writes units as "[n_m]"; ImageJ escapes the micro sign as "\u00B5".
    text = text.strip("[]()").replace("_", "").replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    text = text.replace(" ", "")
    if text == "Å" or text == "A":
        return "å"
    text = text.lower()
    if text.endswith("s") and text[:-1] in _LENGTH_TO_NM and len(text) > 3:
        text = text[:-1]  # plurals such as "microns", "nanometers"
    if text.endswith("s") and text[:-1] in _TIME_TO_S and len(text) > 3:
        text = text[:-1]  # "seconds"
    return text


def classify_unit(unit: str | None) -> tuple[UnitKind, float | None]:
    """Say what kind of quantity an axis unit measures.

    Parameters
    ----------
    unit
        The unit string as stored in a file (``"nm"``, ``"µm"``, ``"1/nm"``, ``"eV"``, ``""``...).

    Returns
    -------
    kind, factor
        ``factor`` converts one ``unit`` to nanometres for ``UnitKind.LENGTH`` and to seconds for
        ``UnitKind.TIME``; it is ``None`` for every other kind.

    Examples
    --------
    >>> classify_unit("µm")
    (<UnitKind.LENGTH: 'length'>, 1000.0)
    >>> classify_unit("1/nm")[0]
    <UnitKind.RECIPROCAL: 'reciprocal'>
    """
    if unit is None:
        return UnitKind.NONE, None
    raw = str(unit).strip()
    text = _normalise(raw)
    if text in _NONE or re.fullmatch(r"unit\d*", text):
        return UnitKind.NONE, None
    if (
        text.startswith("1/")
        or text.endswith("^-1")
        or text.endswith("-1")
        or text.startswith("inv")
    ):
        return UnitKind.RECIPROCAL, None
    if text in _LENGTH_TO_NM:
        return UnitKind.LENGTH, _LENGTH_TO_NM[text]
    if text in _ENERGY:
        return UnitKind.ENERGY, None
    if text in _ANGLE:
        return UnitKind.ANGLE, None
    if text in _TIME_TO_S:
        return UnitKind.TIME, _TIME_TO_S[text]
    return UnitKind.UNKNOWN, None


def length_unit_to_nm(unit: str) -> float:
    """Factor that converts a length in ``unit`` to nanometres.

    Parameters
    ----------
    unit
        A length unit: pm, Å (``"A"``, ``"Angstrom"``), nm, µm (``"um"``, ``"micron"``), mm,
        cm, m or inch.

    Returns
    -------
    float
        Nanometres per ``unit``.

    Raises
    ------
    ValueError
        If ``unit`` is not a length unit.

    Examples
    --------
    >>> length_unit_to_nm("A")
    0.1
    """
    kind, factor = classify_unit(unit)
    if kind is not UnitKind.LENGTH or factor is None:
        raise ValueError(f"unit {unit!r} is not a length unit (expected pm, Å, nm, µm, mm or m)")
    return factor
