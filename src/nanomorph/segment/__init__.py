"""Particle segmentation: threshold and network segmenters, training, metrics, evaluation.

Importing this package is cheap: torch and the network code load only when a name that needs them
is first used (``load_segmenter``, ``build_model``, ...).  Training and evaluation live in the
submodules ``nanomorph.segment.train`` (``train``) and ``nanomorph.segment.evaluate``
(``evaluate``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "build_model": "nanomorph.segment.model",
    "load_segmenter": "nanomorph.segment.model",
    "save_model_folder": "nanomorph.segment.model",
    "default_config": "nanomorph.segment.model",
    "find_model_folder": "nanomorph.segment.model",
    "ModelNotFoundError": "nanomorph.segment.model",
    "DEFAULT_MODEL_NAME": "nanomorph.segment.model",
    "weights_sha256": "nanomorph.segment.model",
    "NetworkSegmenter": "nanomorph.segment.inference",
    "predict_tiled": "nanomorph.segment.inference",
    "PreprocessConfig": "nanomorph.segment.preprocess",
    "prepare_image": "nanomorph.segment.preprocess",
    "segment_threshold": "nanomorph.segment.threshold",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nanomorph.segment' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
