"""The segmentation network, and model folders (weights + config + metrics) on disk.

A model folder (``resources/models/<name>/``) holds:

``model.safetensors``
    the network's state dict (float16 by default, ~25 MB for DeepLabV3+/ResNet-18);
``config.json``
    architecture, encoder, preprocessing (normalisation, polarity, resampling rule), threshold,
    tiling, training settings and the nanomorph version that wrote it;
``metrics.json``
    the training run's held-out test metrics.

Loading never downloads anything: encoders are built with ``encoder_weights=None``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nanomorph.segment.inference import NetworkSegmenter
from nanomorph.segment.preprocess import PreprocessConfig

DEFAULT_MODEL_NAME = "nanomorph-deeplabv3plus-r18"
MODELS_ENV_VAR = "NANOMORPH_MODELS"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 1


class ModelNotFoundError(ValueError):
    """A model name or folder that does not lead to a usable model folder."""


def build_model(
    arch: str = "deeplabv3plus",
    encoder: str = "resnet18",
    in_channels: int = 1,
    arch_options: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """Build an untrained segmentation network with one output channel (the particle logit).

    Parameters
    ----------
    arch : str
        segmentation-models-pytorch architecture name ("deeplabv3plus", "unet", "fpn", ...).
    encoder : str
        Encoder name ("resnet18", ...); its weights are random, never downloaded.
    in_channels : int
        Input channels (1 for a grey-scale micrograph).
    arch_options : mapping, optional
        Further arguments of the smp architecture, e.g. ``{"decoder_channels": [128, 64, 32,
        16, 8]}`` for a lighter U-Net decoder; recorded in ``config.json`` as
        ``architecture_options``.

    Returns
    -------
    torch.nn.Module
        Maps (N, in_channels, H, W) to (N, 1, H, W) logits; H and W must be multiples of 32.

    Raises
    ------
    ValueError
        If smp does not know the architecture or encoder, or the architecture refuses an
        option's value (smp passes names it does not know on without a word).
    """
    import segmentation_models_pytorch as smp

    try:
        return smp.create_model(
            arch,
            encoder_name=encoder,
            encoder_weights=None,
            in_channels=in_channels,
            classes=1,
            **dict(arch_options or {}),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"architecture {arch!r} with options {arch_options}: {error}") from None
    except KeyError as error:
        # smp's message lists every encoder it knows; the first sentence is enough.
        reason = str(error).strip("\"'").split(".")[0][:120]
        raise ValueError(
            f"unknown architecture {arch!r} or encoder {encoder!r} ({reason})"
        ) from None


def default_config(
    name: str = DEFAULT_MODEL_NAME,
    arch: str = "deeplabv3plus",
    encoder: str = "resnet18",
    preprocess: PreprocessConfig | None = None,
    arch_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete ``config.json`` content with default settings.

    Parameters
    ----------
    name : str
        Model name.
    arch, encoder, arch_options
        As for :func:`build_model` (``architecture_options`` is written only when given).
    preprocess : PreprocessConfig, optional
        Preprocessing settings (default settings when omitted).

    Returns
    -------
    dict
    """
    from nanomorph import __version__

    options = {"architecture_options": dict(arch_options)} if arch_options else {}
    return {
        "name": name,
        "format_version": FORMAT_VERSION,
        "nanomorph_version": __version__,
        "architecture": arch,
        **options,
        "encoder": encoder,
        "in_channels": 1,
        "output": "one channel: particle logit; probability = sigmoid(logit)",
        "classes": ["background", "particle"],
        "preprocess": (preprocess or PreprocessConfig()).to_dict(),
        "threshold": 0.5,
        "inference": {"tile_size": 512, "overlap": 64, "batch_size": 4, "blend": "hann"},
        "training": {},
    }


def save_model_folder(
    model: torch.nn.Module,
    folder: str | Path,
    config: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write a model folder: weights, ``config.json`` and ``metrics.json``.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    folder : str or Path
        Created if missing; existing files are replaced.
    config : dict
        Model configuration (see :func:`default_config`); ``weights_dtype`` is added.
    metrics : dict, optional
        Test metrics; an empty object is written when omitted.
    dtype : torch.dtype
        Floating-point dtype of the stored weights (float16 halves the size; integer buffers such
        as BatchNorm counters keep their dtype).

    Returns
    -------
    Path
        The folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        key: (value.detach().to("cpu", dtype) if value.is_floating_point() else value.cpu())
        .contiguous()
        .clone()
        for key, value in model.state_dict().items()
    }
    config = {**config, "weights_dtype": str(dtype).removeprefix("torch.")}
    # Write to temporary names first so that a crash never leaves a half-written model folder.
    tmp_weights = folder / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": "pt"})
    tmp_weights.replace(folder / WEIGHTS_FILE)
    for file_name, content in ((CONFIG_FILE, config), (METRICS_FILE, metrics or {})):
        tmp = folder / (file_name + ".tmp")
        tmp.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")
        tmp.replace(folder / file_name)
    return folder


def model_search_paths() -> list[Path]:
    """Folders searched for named models, in order.

    ``$NANOMORPH_MODELS`` (``os.pathsep``-separated), the repository's ``resources/models``
    (found relative to this file in a source checkout) and ``./resources/models``.

    Returns
    -------
    list of Path
    """
    paths = [Path(p) for p in os.environ.get(MODELS_ENV_VAR, "").split(os.pathsep) if p]
    paths.append(Path(__file__).resolve().parents[3] / "resources" / "models")
    paths.append(Path.cwd() / "resources" / "models")
    return paths


def weights_sha256(folder: str | Path) -> str:
    """The sha256 of a model folder's weights file: which weights a result came from."""
    digest = hashlib.sha256()
    with (Path(folder) / WEIGHTS_FILE).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_model_folder(name_or_path: str | Path | None = None) -> Path:
    """Locate a model folder by path or by name.

    Parameters
    ----------
    name_or_path : str or Path, optional
        A folder holding ``model.safetensors`` and ``config.json``, or a model name looked up in
        :func:`model_search_paths`; None means :data:`DEFAULT_MODEL_NAME`.

    Returns
    -------
    Path

    Raises
    ------
    ModelNotFoundError
        If no such folder exists or it lacks its weights or config.
    """
    candidate = Path(name_or_path if name_or_path is not None else DEFAULT_MODEL_NAME)
    if candidate.is_dir():
        folder = candidate
    else:
        searched = model_search_paths()
        found = [p / candidate for p in searched if (p / candidate).is_dir()]
        if not found:
            where = ", ".join(str(p) for p in searched)
            raise ModelNotFoundError(
                f"model {str(candidate)!r} not found: it is neither a folder nor a model name "
                f"under {where} (set {MODELS_ENV_VAR} or pass a model folder path)"
            )
        folder = found[0]
    for required in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / required).is_file():
            raise ModelNotFoundError(f"model folder {folder} has no {required}")
    return folder


def load_model(folder: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the network a model folder describes and load its weights (as float32).

    Parameters
    ----------
    folder : str or Path
        A model folder.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on the CPU.
    config : dict
        The folder's ``config.json``.

    Raises
    ------
    ModelNotFoundError
        If the folder's files are missing, unreadable or do not fit the architecture.
    """
    from safetensors.torch import load_file

    folder = find_model_folder(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        model = build_model(
            config["architecture"],
            config["encoder"],
            int(config.get("in_channels", 1)),
            config.get("architecture_options"),
        )
        tensors = load_file(str(folder / WEIGHTS_FILE))
        state = model.state_dict()
        tensors = {k: v.to(state[k].dtype) if k in state else v for k, v in tensors.items()}
        model.load_state_dict(tensors, strict=True)
    except (KeyError, RuntimeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise ModelNotFoundError(f"model folder {folder} cannot be loaded: {error}") from None
    return model.eval(), config


def load_segmenter(
    name_or_path: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    test_time_flips: bool = False,
    min_peak_probability: float | None = None,
    flatten_support_px: float | None = None,
    particle_diameter_nm: float | None = None,
    tile_size: int | None = None,
) -> NetworkSegmenter:
    """Load a model folder as a ready-to-use segmenter.

    Parameters
    ----------
    name_or_path : str or Path, optional
        Model folder or name (default: the shipped ``nanomorph-deeplabv3plus-r18``).
    device : {"auto", "cpu", "cuda"}
        "auto" uses CUDA when available.
    precision : {"auto", "bf16", "fp32"}
        Inference autocast precision; "auto" is bf16 only where the hardware computes it natively.
    test_time_flips : bool
        Average over the image and its three flips (four times the inference time).
    min_peak_probability : float, optional
        Override the model's ``min_peak_probability`` (particle regions whose highest
        probability stays below it are dropped); a value not above the threshold keeps all.
    flatten_support_px : float, optional
        Override the model's support flattening (Gaussian width in working-grid pixels; 0 is
        off, None keeps the model's setting).
    particle_diameter_nm : float, optional
        The images' typical particle diameter, if the user knows it: large particles are then
        block-averaged down to the size the network finds best (see
        :class:`~nanomorph.segment.inference.NetworkSegmenter`); None: not declared.
    tile_size : int, optional
        Override the model's tile side for tiled inference (pixels, a multiple of 32; None keeps
        the model's setting).

    Returns
    -------
    NetworkSegmenter

    Raises
    ------
    ModelNotFoundError
        If the model cannot be found or loaded.
    InferenceError
        If a setting cannot be used with this model (a tile size, a probability level, ...).
    """
    folder = find_model_folder(name_or_path)
    model, config = load_model(folder)
    config.setdefault("folder", str(folder))
    config.setdefault("weights_sha256", weights_sha256(folder))
    return NetworkSegmenter(
        model,
        config,
        device=device,
        precision=precision,
        test_time_flips=test_time_flips,
        min_peak_probability=min_peak_probability,
        flatten_support_px=flatten_support_px,
        particle_diameter_nm=particle_diameter_nm,
        tile_size=tile_size,
    )
