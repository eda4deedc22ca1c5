"""Command line: ``nanomorph analyze|simulate|train|evaluate``."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

# Mirrors segment.inference.PRECISIONS; repeated so that `--help` does not import torch.
PRECISION_CHOICES = ("auto", "bf16", "fp32")
# Mirrors pipeline.SEPARATION_METHODS, for the same reason (pipeline imports pandas).
SEPARATION_CHOICES = ("uecs", "watershed", "none")
# Inside --out, as the workflow keeps its masks in results/.nanomorph/masks.
MASK_CACHE_DIR = Path(".nanomorph") / "masks"

log = logging.getLogger("nanomorph")


class CliError(Exception):
    """An error worth one line on stderr and a non-zero exit, never a traceback."""


def _float_argument(text: str, accept: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not accept(value):  # NaN fails every test
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _float_argument(text, lambda v: v > 0, "a positive number")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    return _float_argument(text, lambda v: v >= 0, "a number of at least 0")


def fraction_below_one(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    return _float_argument(text, lambda v: 0.0 <= v < 1.0, "a number from 0 up to (not) 1")


def probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    return _float_argument(text, lambda v: 0.0 <= v <= 1.0, "a probability between 0 and 1")


def simulation_setting(text: str) -> tuple[str, Any]:
    """argparse type: ``KEY=VALUE``, the value read as JSON (``1e7``, ``null``) or else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _add_segmenter_options(p: argparse.ArgumentParser, evaluation: bool = False) -> None:
    """The options that choose and configure the segmenter (shared by analyze and evaluate)."""
    p.add_argument(
        "--segmenter",
        choices=("model", "threshold", "truth") if evaluation else ("model", "threshold"),
        default="model",
        help="the trained network (default) or the classical smoothing + Otsu threshold"
        + (
            "; truth: the simulator's exact mask (scores the analysis after segmentation)"
            if evaluation
            else ""
        ),
    )
    p.add_argument(
        "--polarity",
        choices=("dark", "bright", "auto"),
        default="auto",
        help="dark particles on bright background (bright field) or the reverse (HAADF): the "
        "threshold's polarity; for analyze also a check that drops found particles of the "
        "opposite contrast (default auto: decided per image, no check)",
    )
    p.add_argument("--model", metavar="NAME|PATH", help="model name or folder (default: shipped)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the network runs (default auto: CUDA when available)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="network arithmetic (default auto: bf16 autocast only where the hardware computes "
        "bf16 natively, else fp32)",
    )
    p.add_argument(
        "--test-time-flips",
        action="store_true",
        help="average the network over the image and its three flips (four passes: 4-5x the "
        "inference time, slightly better outlines)",
    )
    p.add_argument(
        "--min-peak-probability",
        type=probability,
        metavar="P",
        help="drop network regions whose highest particle probability stays below P (default: "
        "the model's value, chosen on its validation split; 0 keeps every region)",
    )
    p.add_argument(
        "--flatten-support",
        type=non_negative_float,
        metavar="SIGMA_PX",
        help="scale down intensity variations broader than a Gaussian of SIGMA_PX working-grid "
        "pixels before the network, for small particles on bright, cloudy supports (default: "
        "the model's setting; 0 is off)",
    )
    p.add_argument(
        "--tile-size",
        type=positive_int,
        metavar="PX",
        help="the network's tile side in pixels, a multiple of 32 (default: the model's, 512 "
        "for the shipped one, the most accurate measured; other sizes change the masks, and "
        "larger ones found more false particles on real images: model card)",
    )
    if not evaluation:
        p.add_argument(
            "--particle-diameter",
            type=positive_float,
            metavar="NM",
            help="the typical particle diameter, if you know it roughly: images of large "
            "particles are then also seen block-averaged so that the network sees them at the "
            "size it finds best, images of particles under 10 px enlarged twice (default: not "
            "declared)",
        )


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analysis parameters (defaults: the reference method's)")
    g.add_argument(
        "--min-particle-diameter",
        type=float,
        default=0.5,
        metavar="NM",
        help="regions with a smaller equivalent diameter are speckles (default 0.5)",
    )
    g.add_argument(
        "--min-hole-diameter",
        type=float,
        default=0.5,
        metavar="NM",
        help="holes with a smaller equivalent diameter are filled (default 0.5)",
    )
    g.add_argument(
        "--separation",
        choices=SEPARATION_CHOICES,
        default="uecs",
        help="how overlapping particles are split (default uecs)",
    )
    g.add_argument(
        "--overlap-test",
        choices=("sensitive", "paper"),
        default="sensitive",
        help="paper: convexity < threshold only; sensitive (default): also low solidity",
    )
    g.add_argument(
        "--convexity-threshold",
        type=float,
        default=0.95,
        help="convexity below which a region counts as overlapping (default 0.95)",
    )
    g.add_argument(
        "--convexity-lower-bound",
        type=float,
        default=0.5,
        help="regions less convex than this are excluded (default 0.5)",
    )
    g.add_argument(
        "--min-marker-px",
        type=int,
        default=30,
        help="UECS markers smaller than this many pixels are discarded (default 30)",
    )
    g.add_argument(
        "--min-marker-diameter",
        type=float,
        default=0.5,
        metavar="NM",
        help="UECS markers with a smaller equivalent diameter are discarded (0.5)",
    )
    g.add_argument(
        "--edge",
        choices=("drop", "flag"),
        default="drop",
        help="particles touching the image border: drop (default) or flag",
    )


def _expand_inputs(paths: Sequence[str]) -> list[Path]:
    from .io import MicrographError, find_micrographs

    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            try:
                files.extend(find_micrographs(path))
            except MicrographError as exc:  # "<folder>: folder holds no micrographs (...)"
                raise CliError(str(exc)) from None
        elif path.exists():
            files.append(path)
        else:
            raise CliError(f"{path}: no such file or folder")
    return files


def _image_workers(jobs: int):
    """A pool of ``jobs`` processes for the analysis after segmentation, or None for one job.

    Spawned, not forked: a fork of a process whose PyTorch thread pools have started can hang.
    """
    if jobs == 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


def cmd_analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import MaskCache
    from .io import MicrographError, iter_micrographs
    from .pipeline import (
        AnalysisParameters,
        finish_image,
        make_segmenter,
        segment_micrograph,
        write_combined_outputs,
    )

    try:
        params = AnalysisParameters(
            min_particle_diameter_nm=args.min_particle_diameter,
            min_hole_diameter_nm=args.min_hole_diameter,
            separation=args.separation,
            overlap_test=args.overlap_test,
            convexity_threshold=args.convexity_threshold,
            convexity_lower_bound=args.convexity_lower_bound,
            min_marker_px=args.min_marker_px,
            min_marker_diameter_nm=args.min_marker_diameter,
            edge=args.edge,
            polarity=args.polarity,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    files = _expand_inputs(args.images)
    try:
        segmenter = make_segmenter(
            args.segmenter,
            model=args.model,
            device=args.device,
            polarity=args.polarity,
            precision=args.precision,
            test_time_flips=args.test_time_flips,
            min_peak_probability=args.min_peak_probability,
            flatten_support_px=args.flatten_support,
            particle_diameter_nm=args.particle_diameter,
            tile_size=args.tile_size,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    segmenter_info = segmenter.describe()
    out = Path(args.out)
    mask_cache = None if args.no_mask_cache else MaskCache(out / MASK_CACHE_DIR, segmenter_info)
    failures = 0
    n_particles = 0
    from concurrent.futures.process import BrokenProcessPool

    # With --jobs N the network segments one image after another here, while up to N worker
    # processes analyse and write the images it has segmented; summaries keep the input order.
    workers = _image_workers(args.jobs)
    pending: collections.deque = collections.deque()
    analysed: list[str] = []  # the images' folder names, in input order

    def report(name: str, summary: tuple[str, int]) -> None:
        nonlocal n_particles
        line, count = summary
        analysed.append(name)
        n_particles += count
        tqdm.write(line, file=sys.stdout)

    def collect(keep: int) -> None:
        nonlocal failures
        while len(pending) > keep:
            name, future = pending.popleft()
            try:
                report(name, future.result())
            except MicrographError as exc:
                failures += 1
                print(f"nanomorph: error: {exc}", file=sys.stderr)
            except BrokenProcessPool:
                raise CliError(
                    f"{name}: the process analysing it stopped unexpectedly (out of memory?); "
                    "images before it are complete, run again with fewer --jobs"
                ) from None

    try:
        for path in tqdm(
            files, desc="micrographs", unit="file", disable=args.quiet or None, file=sys.stderr
        ):
            try:
                for micrograph in iter_micrographs(path, pixel_size_nm=args.pixel_size):
                    mask = segment_micrograph(micrograph, segmenter, mask_cache)
                    work = (out, micrograph, mask, params, segmenter_info)
                    if workers is None:
                        report(micrograph.name, finish_image(*work))
                        continue
                    pending.append((micrograph.name, workers.submit(finish_image, *work)))
                    # Images waiting for a worker hold their pixels: at most two per worker.
                    collect(keep=2 * args.jobs)
            except MicrographError as exc:
                failures += 1
                print(f"nanomorph: error: {exc}", file=sys.stderr)
        collect(keep=0)
    finally:
        if workers is not None:
            workers.shutdown(cancel_futures=True)
    overall = ""
    if analysed:
        summary = write_combined_outputs(out, analysed).set_index("property")
        diameter = summary.loc["equivalent_diameter_nm"]
        if diameter["count"] > 1:
            overall = f", equivalent diameter {diameter['mean']:.2f} ± {diameter['sd']:.2f} nm"
    if failures:
        if len(files) > 1:  # a single bad file has said everything in its one line
            print(
                f"nanomorph: {failures} of {len(files)} file(s) could not be analysed",
                file=sys.stderr,
            )
        return 1
    if not args.quiet:
        print(
            f"{n_particles} particles measured in {len(files)} file(s){overall}; results in "
            f"{out}, all images together in {out / 'particles.csv'} and {out / 'summary.csv'}",
            file=sys.stderr,
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import SimulationParameterError, UnknownScenarioError, write_dataset

    try:
        out = write_dataset(
            args.out,
            n_images=args.n,
            seed=args.seed,
            shape=tuple(args.shape),
            scenarios=[args.scenario] if args.scenario else None,
            fmt=args.format,
            pixel_size_nm=args.pixel_size,
            overrides=dict(args.setting),
        )
    except (SimulationParameterError, UnknownScenarioError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.n} simulated micrographs written to {out}", file=sys.stderr)
    return 0


def _export_model_folder(source: Path, target: Path, training_log: Path | None = None) -> None:
    """Copy a trained model folder (and the run's log) into place, replacing the target only
    once complete."""
    import shutil
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # mkdtemp makes a private folder; a shipped model must be readable by everyone
        staging.chmod(0o755)
        for item in source.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        if training_log is not None and training_log.is_file():
            shutil.copy2(training_log, staging / "training_log.jsonl")
        for item in staging.iterdir():
            item.chmod(0o644)
        # Files the training does not write (the model card) are kept.
        if target.is_dir():
            for item in target.iterdir():
                if item.is_file() and not (staging / item.name).exists():
                    shutil.copy2(item, staging / item.name)
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def cmd_train(args: argparse.Namespace) -> int:
    from .segment.train import AugmentConfig, TrainingError, train

    augment = None
    if args.local_contrast_probability > 0:
        augment = AugmentConfig(local_contrast_probability=args.local_contrast_probability)
    try:
        result = train(
            args.out,
            steps=args.steps,
            tile_size=args.tile_size,
            batch_size=args.batch_size,
            seed=args.seed,
            n_images=args.n_images,
            image_shape=tuple(args.image_shape),
            arch=args.arch,
            encoder=args.encoder,
            lr=args.lr,
            val_every=args.val_every,
            precision=args.precision,
            device=args.device,
            n_threads=args.threads,
            n_workers=args.workers,
            resume=not args.restart,
            progress=not args.quiet,
            model_name=args.name,
            init_from=args.init,
            flatten_support_px=args.flatten_support,
            edge_weight=args.edge_weight,
            edge_sigma_px=args.edge_sigma,
            small_particle_weight=args.small_particle_weight,
            small_particle_diameter_px=args.small_particle_diameter,
            arch_options={"decoder_channels": args.decoder_channels}
            if args.decoder_channels
            else None,
            init_encoder_from=args.init_encoder,
            negative_fraction=args.negative_fraction,
            support_defocus_fraction=args.support_defocus_fraction,
            platelet_support_fraction=args.platelet_support_fraction,
            augment=augment,
        )
    except TrainingError as exc:
        raise CliError(str(exc)) from None
    if args.export and result.get("finished"):
        _export_model_folder(
            Path(result["model_dir"]), Path(args.export), Path(args.out) / "log.jsonl"
        )
        result["model_dir"] = args.export
    test = result.get("test") or {}
    print(
        f"best validation particle IoU {result['best_val_particle_iou']:.3f} at step "
        f"{result['best_step']}; test particle IoU {test.get('particle_iou', float('nan')):.3f}; "
        f"model in {result['model_dir']}",
        file=sys.stderr,
    )
    return 0


def _evaluation_segmenter(args: argparse.Namespace):
    if args.segmenter == "truth":
        from .segment.evaluate import TRUTH

        return TRUTH
    if args.segmenter == "threshold":
        from .segment.threshold import segment_threshold

        def threshold(image, pixel_size_nm):
            return segment_threshold(image, pixel_size_nm, polarity=args.polarity)

        return threshold
    from .segment.inference import InferenceError
    from .segment.model import ModelNotFoundError, load_segmenter

    try:
        return load_segmenter(
            args.model,
            device=args.device,
            precision=args.precision,
            test_time_flips=args.test_time_flips,
            min_peak_probability=args.min_peak_probability,
            flatten_support_px=args.flatten_support,
            tile_size=args.tile_size,
        )
    except (ModelNotFoundError, InferenceError) as exc:
        raise CliError(str(exc)) from None


def _check_simulation_settings(overrides: dict[str, Any], scenarios: Sequence[str]) -> None:
    """Fail in one line before a long evaluation if a setting is unknown or unusable."""
    from .simulate import SCENARIOS, SimulationParameterError, check_settings

    try:
        check_settings(overrides, [s for s in scenarios if s in SCENARIOS])
    except SimulationParameterError as exc:  # unknown names, values of the wrong kind
        settings = " ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())
        raise CliError(f"--simulation-setting {settings}: {exc}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import AnalysisParameters, postprocess
    from .segment.evaluate import DEFAULT_SCENARIOS, EvaluationError, evaluate
    from .simulate import UnknownScenarioError

    segmenter = _evaluation_segmenter(args)
    params = AnalysisParameters(separation=args.separation)
    if args.declare_polarity and args.instances != "pipeline":
        raise CliError("--declare-polarity needs --instances pipeline (the analysis)")
    item_segmenter_fn = None
    if args.declare_particle_diameter:
        if args.segmenter != "model":
            raise CliError("--declare-particle-diameter needs --segmenter model (the network)")

        def item_segmenter_fn(item):
            # Told the image's typical particle size, as a user who knows it would declare it.
            diameters = item.particles["equivalent_diameter_nm"]
            declared = float(diameters.median()) if len(diameters) else None
            return segmenter.segment(item.image, item.pixel_size_nm, particle_diameter_nm=declared)

    if args.separation != "uecs" and args.instances != "pipeline":
        raise CliError("--separation needs --instances pipeline (the analysis)")
    instances_fn = None
    item_instances_fn = None
    if args.instances == "truth":
        from .segment.evaluate import TRUTH

        instances_fn = TRUTH
    elif args.instances == "pipeline":

        def instances_fn(mask, pixel_size_nm):
            # Particles as the analysis sees them: despeckled and separated (edges kept, since
            # the simulator's table includes edge particles).
            _, separation = postprocess(
                mask, pixel_size_nm, dataclasses.replace(params, edge="flag")
            )
            return separation.labels

        if args.declare_polarity:

            def item_instances_fn(mask, item):
                # The same analysis, told the image's polarity as a user would declare it.
                polarity = "bright" if item.modality == "haadf" else "dark"
                settings = dataclasses.replace(params, edge="flag", polarity=polarity)
                _, separation = postprocess(mask, item.pixel_size_nm, settings, image=item.image)
                return separation.labels

    overrides = dict(args.simulation_setting)
    if overrides:
        _check_simulation_settings(overrides, args.scenarios or DEFAULT_SCENARIOS)
    try:
        result = evaluate(
            segmenter,
            scenarios=args.scenarios or DEFAULT_SCENARIOS,
            seed=args.seed,
            n_per_scenario=args.n,
            out_dir=args.out,
            shape=tuple(args.shape),
            instances_fn=instances_fn,
            item_instances_fn=item_instances_fn,
            name=args.segmenter if args.segmenter != "model" else str(args.model or "model"),
            progress=not args.quiet,
            segmentation=_segmentation_record(segmenter),
            simulation_overrides=overrides or None,
            item_segmenter_fn=item_segmenter_fn,
            analysis={
                "instances": args.instances,
                "separation": args.separation if args.instances == "pipeline" else None,
                "declared_polarity": bool(args.declare_polarity),
                "declared_particle_diameter": (
                    "each image's true median equivalent diameter"
                    if args.declare_particle_diameter
                    else None
                ),
            },
        )
    except (UnknownScenarioError, EvaluationError) as exc:
        raise CliError(str(exc)) from None
    print(
        f"{'scenario':26s} {'particle IoU':>12s} {'recall':>7s} {'precision':>9s} "
        f"{'mean d error':>12s}"
    )
    for scenario, scores in [*result["scenarios"].items(), ("overall", result["overall"])]:
        print(
            f"{scenario:26s} {scores['pixel']['particle_iou']:12.3f} "
            f"{scores['instance']['recall']:7.3f} {scores['instance']['precision']:9.3f} "
            f"{100 * scores['diameter']['mean_image_mean_diameter_error']:+11.1f}%"
        )
    print(f"metrics written to {args.out}", file=sys.stderr)
    return 0


def _segmentation_record(segmenter) -> dict | None:
    """How the network segmented (model, precision, levels), its folder relative to here."""
    describe = getattr(segmenter, "describe", None)
    if not callable(describe):
        return None
    described = dict(describe())
    folder = described.get("model_folder")
    if folder:
        try:
            described["model_folder"] = str(Path(folder).resolve().relative_to(Path.cwd()))
        except ValueError:
            pass
    return described


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanomorph",
        description="Calibrated particle size and shape distributions from TEM micrographs.",
    )
    parser.add_argument("--version", action="version", version=f"nanomorph {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="segment, separate and measure particles in micrographs")
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="micrographs (.dm3 .dm4 .ser .emd .tif .png .jpg) or folders of them",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        metavar="NM",
        help="pixel size in nm; overrides the file's calibration",
    )
    _add_segmenter_options(p)
    p.add_argument(
        "--no-mask-cache",
        action="store_true",
        help="do not keep the segmenter's masks in DIR/.nanomorph/masks (by default they are "
        "kept, and a later run on the same images with the same segmenter settings takes them "
        "from there: trying other analysis parameters then costs no network time)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="analyse the segmented images in N processes while the network segments the next "
        "ones (default 1: one image after another). Despeckling, separation, measurement and "
        "the overlay use one core per image, so with a GPU, or many cores, N > 1 analyses "
        "images several times faster; on a CPU each process takes a core from the network",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_analysis_options(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("simulate", help="write simulated micrographs with exact ground truth")
    p.add_argument("out", metavar="DIR")
    p.add_argument("--n", type=int, default=10, help="number of micrographs (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--scenario", default=None, help="one scenario (default: a random mix)")
    p.add_argument("--format", choices=("tif", "dm3", "dm4", "emd"), default="tif")
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        metavar="NM",
        help="pixel size of every image in nm (default: drawn per image, 0.02-10 nm)",
    )
    p.add_argument(
        "--setting",
        type=simulation_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a simulation setting for every image (repeatable; VALUE as JSON, e.g. "
        "modality=haadf, dose=1e4, support_platelets=true; the names are those of "
        "params.jsonl)",
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("train", help="train the segmentation network on simulated micrographs")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="run folder: image cache, checkpoint, log, best model in DIR/model",
    )
    p.add_argument("--steps", type=int, default=8000, help="optimiser steps (default 8000)")
    p.add_argument("--tile-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-images", type=int, default=1500, help="simulated images in the pool")
    p.add_argument("--image-shape", type=int, nargs=2, default=(384, 384), metavar=("H", "W"))
    p.add_argument("--arch", default="deeplabv3plus")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="autocast precision (default auto: bf16 only where the hardware computes it)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--workers", type=int, default=2, help="processes simulating the pool")
    p.add_argument("--name", default="nanomorph-deeplabv3plus-r18", help="model name")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument(
        "--init",
        metavar="NAME|PATH",
        help="start from this model's weights instead of random ones (fine-tuning; "
        "e.g. the shipped nanomorph-deeplabv3plus-r18)",
    )
    p.add_argument(
        "--init-encoder",
        metavar="NAME|PATH",
        help="start the encoder from this model's encoder (any architecture with the same "
        "encoder, e.g. a U-Net on the shipped DeepLabV3+'s ResNet-18); the decoder starts "
        "from random weights",
    )
    p.add_argument(
        "--decoder-channels",
        type=int,
        nargs="+",
        metavar="N",
        help="decoder widths of the architecture (smp's decoder_channels; U-Net: five, "
        "e.g. 128 64 32 16 8, lighter than its default 256 128 64 32 16)",
    )
    p.add_argument(
        "--flatten-support",
        type=non_negative_float,
        metavar="SIGMA_PX",
        help="train with support flattening: variations broader than a Gaussian of SIGMA_PX "
        "working-grid pixels scaled to 0.3 before the network (0: off; default: the initial "
        "model's setting, else off)",
    )
    p.add_argument(
        "--edge-weight",
        type=non_negative_float,
        default=0.0,
        metavar="W",
        help="extra cross-entropy weight of the pixels at particle outlines, 1 + W at the "
        "outline falling off over --edge-sigma pixels (default 0: every pixel alike)",
    )
    p.add_argument(
        "--negative-fraction",
        type=fraction_below_one,
        default=0.0,
        metavar="F",
        help="share of the simulated pool that is scenes without particles (bright-field "
        "carbon grain, textured support, residue), in [0, 1); default 0",
    )
    p.add_argument(
        "--support-defocus-fraction",
        type=probability,
        default=0.0,
        metavar="F",
        help="share of the simulated pool whose HAADF support is blurred as out of the probe's "
        "focus (particles sharp, oxide grains under them soft), in [0, 1]; default 0",
    )
    p.add_argument(
        "--local-contrast-probability",
        type=probability,
        default=0.0,
        metavar="P",
        help="share of training tiles whose contrast is scaled by a smooth random gain field "
        "(particles, support and noise stand out more in one region, less in another), in "
        "[0, 1]; default 0",
    )
    p.add_argument(
        "--platelet-support-fraction",
        type=probability,
        default=0.0,
        metavar="F",
        help="share of the simulated pool whose support grains are flat platelets and rods, as "
        "alumina's are, instead of spheres, in [0, 1]; default 0",
    )
    p.add_argument(
        "--edge-sigma",
        type=positive_float,
        default=1.5,
        metavar="PX",
        help="width of the outline band --edge-weight emphasises, in working-grid pixels "
        "(default 1.5)",
    )
    p.add_argument(
        "--small-particle-weight",
        type=non_negative_float,
        default=0.0,
        metavar="W",
        help="extra cross-entropy weight of particles smaller than --small-particle-diameter "
        "and of the 3 px around them, 1 + W from half that diameter down (default 0: every "
        "pixel alike)",
    )
    p.add_argument(
        "--small-particle-diameter",
        type=positive_float,
        default=16.0,
        metavar="PX",
        help="equivalent diameter in working-grid pixels from which on a particle gets no "
        "extra weight from --small-particle-weight (default 16)",
    )
    p.add_argument(
        "--export",
        metavar="DIR",
        help="copy the best model folder here when training finishes (e.g. resources/models/NAME)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a segmenter on a fresh simulated test set")
    p.add_argument("--out", required=True, metavar="DIR", help="metrics, confusion matrices")
    _add_segmenter_options(p, evaluation=True)
    p.add_argument("--scenarios", nargs="*", help="simulator scenarios (default: all five)")
    p.add_argument("--n", type=int, default=10, help="images per scenario (default 10)")
    p.add_argument("--seed", type=int, default=20240601, help="test-set seed")
    p.add_argument("--shape", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument(
        "--instances",
        choices=("components", "pipeline", "truth"),
        default="pipeline",
        help="particles = connected components, the despeckle+separation pipeline (default), "
        "or the simulator's own visible parts (the ceiling of any split)",
    )
    p.add_argument(
        "--separation",
        choices=SEPARATION_CHOICES,
        default="uecs",
        help="how the analysis splits overlapping particles (--instances pipeline; default uecs)",
    )
    p.add_argument(
        "--declare-polarity",
        action="store_true",
        help="tell the analysis each simulated image's polarity (from its modality), as a user "
        "who declares bright field or HAADF would: particles of the wrong contrast are dropped",
    )
    p.add_argument(
        "--declare-particle-diameter",
        action="store_true",
        help="tell the network each simulated image's typical particle diameter (the median "
        "of its true equivalent diameters), as a user who knows it would declare it "
        "(analyze --particle-diameter)",
    )
    p.add_argument(
        "--simulation-setting",
        type=simulation_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a simulation setting for every test image (repeatable; VALUE as JSON, e.g. "
        "dose=1e7, jpeg_quality=null): the same scenes recorded otherwise",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Reader warnings (RGB converted to grey...) are recorded in metadata.json; on the
        # terminal they are shown once each, not per frame.
        warnings.simplefilter("once")
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"nanomorph: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nanomorph: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
