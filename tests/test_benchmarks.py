"""Checks on the benchmark scripts' own bookkeeping (not on the numbers they measure)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _load_real_counts():
    spec = importlib.util.spec_from_file_location(
        "real_counts", REPO / "benchmarks" / "real_counts.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_counts", module)
    spec.loader.exec_module(module)
    return module


def test_real_counts_modality_matches_the_hand_boxes(shared_data):
    """Each image's modality (the threshold's polarity) agrees with what the annotator boxed.

    Inside the central half of the hand boxes the particles are darker than the unboxed field
    in bright field and brighter in HAADF. A name-prefix rule once called the HAADF images PtC3
    and PtCo bright field and gave the threshold baseline the wrong polarity there.
    """
    real_counts = _load_real_counts()
    folder = shared_data / "supported-catalysts"
    if not folder.is_dir():
        pytest.skip("supported-catalysts data absent")
    names = sorted(p.stem for p in (folder / "images").glob("*.jpg"))
    assert len(names) == 33
    assert real_counts.BRIGHT_FIELD <= set(names)
    wrong = []
    for name in names:
        with Image.open(folder / "images" / f"{name}.jpg") as img:
            grey = np.asarray(img.convert("L"), dtype=np.float64)
        h, w = grey.shape
        core = np.zeros(grey.shape, bool)
        boxed = np.zeros(grey.shape, bool)
        for cx, cy, bw, bh in real_counts.hand_boxes(name):
            for target, half in ((core, 0.25), (boxed, 0.5)):
                r0, c0 = max(int((cy - bh * half) * h), 0), max(int((cx - bw * half) * w), 0)
                r1 = max(int(np.ceil((cy + bh * half) * h)), r0 + 1)
                c1 = max(int(np.ceil((cx + bw * half) * w)), c0 + 1)
                target[r0:r1, c0:c1] = True
        particles_brighter = np.median(grey[core]) > np.median(grey[~boxed])
        if particles_brighter == real_counts.is_bright_field(name):
            wrong.append(name)
    assert wrong == []
