"""Choose a trained model's ``min_peak_probability`` on the validation split it was trained with.

`nanomorph train` makes this choice itself when it finishes (``finalize_model``); this script makes
it for a model folder trained before the setting existed, by the same rule
(`nanomorph.segment.train.min_peak_probability_scores`) on the same images: the training run's
validation split is re-simulated from the seed, image count and image size its ``config.json``
records (or read from that run's image cache), the network is run over it, and every level is
scored with the model's own threshold, which is left as it is.

Usage::

    python benchmarks/tune_min_peak.py --out benchmarks/results/tune_min_peak.json
    python benchmarks/tune_min_peak.py --cache work/train-r18c/cache/384x384 --write
    python benchmarks/tune_min_peak.py --test-time-flips \
        --out benchmarks/results/tune_min_peak_flips.json

Prints one row per level and writes JSON; ``--write`` also stores the chosen level and its record
in the model's ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

from nanomorph.cli import PRECISION_CHOICES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or folder (default: the shipped model)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="image cache of the training run (default: work/tune-min-peak/cache, simulated once)",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes simulating images")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
    parser.add_argument(
        "--test-time-flips",
        action="store_true",
        help="score the probabilities averaged over each image and its three flips (the "
        "segmenter's --test-time-flips); reports the level only, never --write",
    )
    parser.add_argument("--write", action="store_true", help="store the choice in config.json")
    parser.add_argument("--out", type=Path, help="JSON file for the scores")
    args = parser.parse_args(argv)
    if args.write and args.test_time_flips:
        # config.json holds one level, used by every run, and flips are off by default.
        parser.error("--write stores the level for single-pass inference; drop --test-time-flips")

    import torch

    from nanomorph.segment.inference import resolve_device, resolve_precision
    from nanomorph.segment.model import find_model_folder, load_model, weights_sha256
    from nanomorph.segment.preprocess import PreprocessConfig
    from nanomorph.segment.train import (
        build_image_cache,
        load_pool,
        min_peak_probability_record,
        min_peak_probability_scores,
        pool_probabilities,
        simulated_sample,
        split_seeds,
    )

    folder = find_model_folder(args.model)
    model, config = load_model(folder)
    training = config["training"]
    shape = tuple(training["image_shape"])
    validation = split_seeds(training["seed"], training["n_images"])["validation"]
    cache = args.cache or Path("work/tune-min-peak/cache") / f"{shape[0]}x{shape[1]}"
    start = time.perf_counter()
    build_image_cache(
        cache, validation, partial(simulated_sample, shape=shape), n_workers=args.workers
    )
    preprocess = PreprocessConfig.from_dict(config.get("preprocess", {}))
    pool = load_pool(cache, validation, preprocess)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model = model.to(device)
    pairs = [
        (item.mask, prob)
        for item, prob in pool_probabilities(
            model, pool, preprocess, device, precision, test_time_flips=args.test_time_flips
        )
    ]
    threshold = float(config["threshold"])
    level, scores = min_peak_probability_scores(pairs, threshold)
    seconds = time.perf_counter() - start

    flips = ", test-time flips" if args.test_time_flips else ""
    print(
        f"{folder.name}: {len(pool)} validation images, threshold {threshold:g}, {precision}{flips}"
    )
    print(f"{'level':>6s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'false':>6s} {'missed':>6s}")
    for key, row in scores.items():
        mark = " <- chosen" if key == (level if level is not None else threshold) else ""
        print(
            f"{key:6.2f} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} "
            f"{row['fp']:6d} {row['fn']:6d}{mark}"
        )
    record = min_peak_probability_record(level, scores, precision)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "model": folder.name,
            "weights_sha256": weights_sha256(folder),
            "n_validation_images": len(pool),
            "threshold": threshold,
            "test_time_flips": args.test_time_flips,
            "min_peak_probability": level,
            "tuning": record,
            "seconds": round(seconds, 1),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.write:
        config_path = folder / "config.json"
        stored = json.loads(config_path.read_text())
        stored["min_peak_probability"] = level
        stored["min_peak_probability_tuning"] = record
        tmp = config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(stored, indent=2) + "\n")
        tmp.replace(config_path)
        print(f"wrote min_peak_probability={level} to {config_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
