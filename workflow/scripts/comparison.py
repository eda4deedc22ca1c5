"""Equivalent-diameter distributions of all samples on one figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.aggregate import merge_tables  # noqa: E402
from nanomorph.plots import save_sample_comparison  # noqa: E402

tables = [
    merge_tables([path], sample=name)
    for name, path in zip(snakemake.params.samples, snakemake.input)  # noqa: F821
]
save_sample_comparison(merge_tables(tables), snakemake.output[0])  # noqa: F821
