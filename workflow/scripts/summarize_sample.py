"""Summary statistics of a sample, including particles the separation had to exclude."""

import json
import logging
import sys
from pathlib import Path

from nanomorph.aggregate import summarize
from nanomorph.outputs import read_table, write_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

particles = read_table(smk.input.particles)
metadata = [json.loads(Path(p).read_text()) for p in smk.input.metadata]
excluded = {meta["image"]: int(meta.get("n_excluded", 0)) for meta in metadata}
summary = summarize(
    particles,
    n_boot=smk.params.n_boot,
    seed=smk.params.seed,
    group_by=None,
    excluded=excluded,
)
summary.insert(0, "sample", smk.wildcards.sample)
summary["n_images"] = len(metadata)
write_table(summary, csv_path=smk.output[0])
