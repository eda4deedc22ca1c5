"""Speed of the micrograph simulator per scenario (one core).

Usage: ``python benchmarks/bench_simulate.py [--n 20] [--size 256]``. Prints a table and writes
``benchmarks/results/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

# one core, as promised for training-tile generation
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from nanomorph.simulate import SCENARIOS, simulate_micrograph  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="tiles per scenario")
    parser.add_argument("--size", type=int, default=256, help="tile edge in pixels")
    args = parser.parse_args()
    shape = (args.size, args.size)
    simulate_micrograph(0, (64, 64))  # warm imports and caches
    rows = []
    for scenario in [*SCENARIOS, None]:
        times, cpu, counts = [], [], []
        for seed in range(args.n):
            t0, c0 = time.perf_counter(), time.process_time()
            sim = simulate_micrograph(1000 + seed, shape, scenario=scenario)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            counts.append(len(sim.particles))
        t = np.array(times)
        rows.append(
            dict(
                scenario=scenario or "mixture (None)",
                n_tiles=args.n,
                mean_s=float(t.mean()),
                median_s=float(np.median(t)),
                p95_s=float(np.quantile(t, 0.95)),
                max_s=float(t.max()),
                # CPU time of this process: robust when other jobs share the cores
                mean_cpu_s=float(np.mean(cpu)),
                mean_particles=float(np.mean(counts)),
            )
        )
    print(f"simulate_micrograph, {args.size}x{args.size} px, {args.n} tiles per scenario, 1 thread")
    head = ("scenario", "mean s", "median s", "p95 s", "max s", "cpu s", "particles")
    print(f"{head[0]:<26}" + "".join(f"{h:>10}" for h in head[1:]))
    for r in rows:
        print(
            f"{r['scenario']:<26}{r['mean_s']:>10.4f}{r['median_s']:>10.4f}{r['p95_s']:>10.4f}"
            f"{r['max_s']:>10.4f}{r['mean_cpu_s']:>10.4f}{r['mean_particles']:>10.1f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            dict(
                benchmark="simulate_micrograph",
                shape=list(shape),
                machine=platform.processor() or platform.machine(),
                python=platform.python_version(),
                results=rows,
            ),
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
