"""Summary statistics of a sample, including particles the separation had to exclude."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.aggregate import summarize  # noqa: E402
from nanomorph.outputs import read_table, write_table  # noqa: E402

particles = read_table(snakemake.input.particles)  # noqa: F821
metadata = [json.loads(Path(p).read_text()) for p in snakemake.input.metadata]  # noqa: F821
excluded = {meta["image"]: int(meta.get("n_excluded", 0)) for meta in metadata}
summary = summarize(
    particles,
    n_boot=snakemake.params.n_boot,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    group_by=None,
    excluded=excluded,
)
summary.insert(0, "sample", snakemake.wildcards.sample)  # noqa: F821
summary["n_images"] = len(metadata)
write_table(summary, csv_path=snakemake.output[0])  # noqa: F821
