"""Histograms of equivalent diameter, min/max Feret and circularity (mean ± SD and N drawn)."""

import sys
from pathlib import Path

from nanomorph.outputs import read_table
from nanomorph.plots import save_histograms

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

# One PNG per property, named histogram_<property>.png, in the folder of the declared outputs.
save_histograms(
    read_table(smk.input[0]),
    Path(smk.output[0]).parent,
    title=smk.wildcards.sample,
)
