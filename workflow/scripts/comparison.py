"""Equivalent-diameter distributions of all samples on one figure."""

import sys

from nanomorph.aggregate import merge_tables
from nanomorph.plots import save_sample_comparison

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

tables = [
    merge_tables([path], sample=name)
    for name, path in zip(smk.params.samples, smk.input, strict=True)
]
save_sample_comparison(merge_tables(tables), smk.output[0])
