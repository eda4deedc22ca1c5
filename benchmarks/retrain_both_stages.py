"""Time the shipped model's two training commands back to back, on this machine or a GPU.

Runs stage 1 (8,000 steps from random weights on 1,500 simulated images) and stage 2 (600 steps
from stage 1's weights with the support flattened, on the first 800 of those images), each
exactly as the model card's "How to retrain" and "This version" give them, with the device,
arithmetic and number of simulating processes of one's choosing. Prints one row per stage (wall
clock, seconds per step, validation and test particle IoU, the chosen threshold and
``min_peak_probability``, the weights' sha256) and writes them as JSON, with the machine.

Both commands are resumable: rerunning this script with the same ``--out-dir`` continues from
the checkpoints (the JSON then says so, and the times cover only the rerun).

Usage::

    python benchmarks/retrain_both_stages.py --out-dir work/retrain \
        --json benchmarks/results/retrain_both_stages.json
    # on a GPU machine: simulate on every core, train in bf16 on the GPU
    python benchmarks/retrain_both_stages.py --device cuda --workers 16 --out-dir work/retrain \
        --json work/retrain/timing.json

The stage-1 weights come out in ``OUT/stage1/model``, the finished model in ``OUT/stage2/model``;
score them with ``nanomorph evaluate --model OUT/stage2/model`` and ``benchmarks/real_counts.py
--model OUT/stage2/model``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

# The two commands of the model card; only where and how they run is changed here.
STAGE1 = {"steps": 8000, "n_images": 1500, "val_every": 500}
STAGE2 = {
    "steps": 600,
    "n_images": 800,
    "val_every": 200,
    "lr": 3e-4,
    "flatten_support": 32,
}
# A run of seconds that goes through the same code (the script's own test uses it).
QUICK = {
    "stage1": {"steps": 4, "n_images": 10, "val_every": 2},
    "stage2": {"steps": 2, "n_images": 10, "val_every": 2, "lr": 3e-4, "flatten_support": 32},
    "shape": ["--tile-size", "64", "--batch-size", "2", "--image-shape", "96", "96"],
}


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    # sched_getaffinity counts the cores this process may use (a container's, not the host's).
    affinity = getattr(os, "sched_getaffinity", None)
    info["cpu_cores"] = len(affinity(0)) if affinity else os.cpu_count()
    return info


def train_command(out: Path, settings: dict, common: list[str], init: Path | None) -> list[str]:
    command = [sys.executable, "-m", "nanomorph", "train", "--out", str(out)]
    command += ["--steps", str(settings["steps"]), "--n-images", str(settings["n_images"])]
    command += ["--val-every", str(settings["val_every"])]
    if "lr" in settings:
        command += ["--lr", str(settings["lr"])]
    if "flatten_support" in settings:
        command += ["--flatten-support", str(settings["flatten_support"])]
    if init is not None:
        command += ["--init", str(init)]
    return command + common


def read_run(out: Path) -> dict:
    """What a finished ``nanomorph train --out OUT`` left: its log, scores and chosen levels."""
    from nanomorph.segment.model import weights_sha256

    records = [
        json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()
    ]
    train = [r for r in records if r["kind"] == "train"]
    validation = {int(r["step"]): r["particle_iou"] for r in records if r["kind"] == "validation"}
    test = [r["particle_iou"] for r in records if r["kind"] == "test"]
    config = json.loads((out / "model" / "config.json").read_text())
    seconds_per_step = None
    if len(train) >= 2:
        first, last = train[0], train[-1]
        if last["step"] > first["step"]:
            seconds_per_step = (last["elapsed_s"] - first["elapsed_s"]) / (
                last["step"] - first["step"]
            )
    return {
        "validation_particle_iou": validation,
        "best_validation_particle_iou": max(validation.values()) if validation else None,
        "test_particle_iou": test[-1] if test else None,
        "seconds_per_step": seconds_per_step,
        "threshold": config.get("threshold"),
        "min_peak_probability": config.get("min_peak_probability"),
        "weights_sha256": weights_sha256(out / "model"),
    }


def run_stage(name: str, command: list[str], out: Path, log: Path) -> dict:
    resumed = (out / "checkpoint.pt").exists()
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"{name} failed (exit {done.returncode}; {log}): {tail[0]}")
    return {
        "stage": name,
        "command": command[1:],
        "resumed": resumed,
        "wall_s": seconds,
        **read_run(out),
    }


def _number(value: float | None, width: int, digits: int) -> str:
    # A run too short to time or to choose a level leaves None: a dash, not a crash.
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("work/retrain"))
    parser.add_argument("--json", type=Path, default=None, help="results (default OUT/timing.json)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--workers", type=int, default=2, help="processes simulating the pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="a few steps on tiny images: checks the script only"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    common = ["--seed", str(args.seed), "--device", args.device, "--precision", args.precision]
    common += ["--workers", str(args.workers), "-q"]
    stage1, stage2 = (QUICK["stage1"], QUICK["stage2"]) if args.quick else (STAGE1, STAGE2)
    if args.quick:
        common += QUICK["shape"]

    rows = []
    print(
        f"{'stage':<7} {'wall min':>8} {'s/step':>7} {'best val':>8} {'test':>6} "
        f"{'thr':>5} {'peak':>5}  sha256"
    )
    for name, settings, init in (
        ("stage1", stage1, None),
        ("stage2", stage2, out / "stage1" / "model"),
    ):
        row = run_stage(
            name,
            train_command(out / name, settings, common, init),
            out / name,
            out / f"{name}.log",
        )
        rows.append(row)
        print(
            f"{name:<7} {row['wall_s'] / 60:>8.1f} {_number(row['seconds_per_step'], 7, 2)} "
            f"{_number(row['best_validation_particle_iou'], 8, 3)} "
            f"{_number(row['test_particle_iou'], 6, 3)} {_number(row['threshold'], 5, 2)} "
            f"{_number(row['min_peak_probability'], 5, 2)}  {row['weights_sha256'][:8]}",
            flush=True,
        )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "the shipped model's two training commands, back to back",
        "machine": machine(),
        "device": args.device,
        "precision": args.precision,
        "workers": args.workers,
        "quick": args.quick,
        "total_wall_min": sum(r["wall_s"] for r in rows) / 60,
        "peak_rss_mb_of_one_stage": peak_mb,
        "stages": rows,
    }
    print(f"both stages: {result['total_wall_min']:.1f} min; peak memory {peak_mb:.0f} MB")
    target = args.json or out / "timing.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(target)
    return result


if __name__ == "__main__":
    main()
