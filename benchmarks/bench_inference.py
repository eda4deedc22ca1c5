"""CPU inference speed and peak memory of the segmentation network, fp32 vs bf16 + channels_last.

bf16 only pays where the CPU computes it natively (AVX-512 bf16 / AMX); elsewhere oneDNN emulates
it and it is several times slower than fp32, so the default precision "auto" picks it only there.
The JSON records which of the two "auto" chose on the measuring machine.

Each (size, setting) runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its
own.  Prints a table and writes ``benchmarks/results/inference.json``.

    python benchmarks/bench_inference.py [--sizes 1024 2048 4096] [--repeats 2] [--threads 2]
        [--precisions fp32 bf16 fp32-flips] [--model NAME|PATH] [--particle-diameters PX ...]
        [--out FILE]

By default the network is the default architecture with random weights (speed does not depend on
them); ``--model`` times a model folder's own network and settings instead (another
architecture, say). The whole :meth:`NetworkSegmenter.predict_proba` path is timed:
normalisation, tiling, blending.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"

WORKER = r"""
import json, resource, sys, time
import numpy as np, torch
size, setting, threads, repeats, model, diameter = sys.argv[1:7]
size, threads, repeats = int(size), int(threads), int(repeats)
# the image's pixels are 1 nm, so a declared diameter in nm is one in pixels
diameter = float(diameter) if diameter else None
precision, flips = setting.removesuffix("-flips"), setting.endswith("-flips")
torch.set_num_threads(threads)
from nanomorph.segment.inference import NetworkSegmenter
from nanomorph.segment.model import build_model, default_config, load_model
torch.manual_seed(0)
network, config = load_model(model) if model else (build_model().eval(), default_config())
segmenter = NetworkSegmenter(network, config, device="cpu", precision=precision,
                             test_time_flips=flips, particle_diameter_nm=diameter)
segmenter.channels_last = precision == "bf16"
if not segmenter.channels_last:
    segmenter.model = segmenter.model.to(memory_format=torch.contiguous_format)
image = np.random.default_rng(0).normal(100, 10, (size, size)).astype(np.float32)
segmenter.predict_proba(image[:512, :512], 1.0)  # warm-up
times = []
for _ in range(repeats):
    start = time.perf_counter()
    segmenter.predict_proba(image, 1.0)
    times.append(time.perf_counter() - start)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": size, "setting": setting, "particle_diameter_px": diameter,
                  "seconds": min(times),
                  "seconds_all": times, "peak_rss_mb": peak_mb}))
"""

SETTINGS = {
    "fp32": "fp32 (contiguous)",
    "bf16": "bf16 autocast + channels_last",
    "fp32-flips": "fp32, test-time flips (4 passes)",
}
DEFAULT_SETTINGS = ("fp32", "bf16")


def run_one(
    size: int,
    precision: str,
    threads: int,
    repeats: int,
    model: str = "",
    particle_diameter_px: float | None = None,
) -> dict:
    """Time one configuration in a subprocess and return its JSON record."""
    diameter = "" if particle_diameter_px is None else str(particle_diameter_px)
    worker_args = [str(size), precision, str(threads), str(repeats), model, diameter]
    out = subprocess.run(
        [sys.executable, "-c", WORKER, *worker_args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=tuple(SETTINGS),
        default=list(DEFAULT_SETTINGS),
        help="settings to time (emulated bf16 at 4096² takes minutes; fp32-flips: "
        "--test-time-flips)",
    )
    parser.add_argument(
        "--model",
        default="",
        metavar="NAME|PATH",
        help="time this model folder's network (default: the default architecture, random weights)",
    )
    parser.add_argument(
        "--particle-diameters",
        type=float,
        nargs="+",
        default=None,
        metavar="PX",
        help="also time each setting with these declared particle diameters (in pixels; 48 or "
        "more adds the second, coarser pass and its combination, under 10 makes the one pass on "
        "the image enlarged twice; default: not declared only)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    diameters = [None, *args.particle_diameters] if args.particle_diameters else [None]

    import torch

    records = []
    print(f"{'size':>6} {'setting':<32} {'diameter':>8} {'seconds':>8} {'peak RSS MB':>12}")
    for size in args.sizes:
        for precision in args.precisions:
            for diameter in diameters:
                record = run_one(size, precision, args.threads, args.repeats, args.model, diameter)
                record["setting_name"] = SETTINGS[precision]
                records.append(record)
                declared = "-" if diameter is None else f"{diameter:g} px"
                print(
                    f"{size:>6} {SETTINGS[precision]:<32} {declared:>8} "
                    f"{record['seconds']:>8.2f} {record['peak_rss_mb']:>12.0f}",
                    flush=True,
                )
    from nanomorph.segment.inference import native_bf16, resolve_precision

    cpu = torch.device("cpu")
    network = "DeepLabV3+/ResNet-18, random weights"
    if args.model:
        from nanomorph.segment.model import find_model_folder

        config = json.loads((find_model_folder(args.model) / "config.json").read_text())
        options = config.get("architecture_options")
        network = f"{config['name']}: {config['architecture']}/{config['encoder']}" + (
            f" {options}" if options else ""
        )
    result = {
        "benchmark": f"segmentation inference, {network}, NetworkSegmenter.predict_proba",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(cpu),
        "auto_precision": resolve_precision("auto", cpu),
        "tile_size": 512,
        "overlap": 64,
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "note": "best of `repeats`; shared 2-core machine, expect +-25 % between runs",
        "results": records,
    }
    print(
        f"CPU capability {result['cpu_capability']}, native bf16: {result['native_bf16']}; "
        f"the default precision 'auto' uses {result['auto_precision']} here"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
