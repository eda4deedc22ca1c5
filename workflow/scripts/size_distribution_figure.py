"""Publication figure: equivalent-diameter histogram of one sample with a fitted log-normal."""

import sys

from nanomorph.outputs import read_table
from nanomorph.plots import save_size_distribution_figure

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

# Writes the .png and the .pdf next to each other.
save_size_distribution_figure(
    read_table(smk.input[0]),
    smk.output.png,
    fit="lognormal",
    formats=("png", "pdf"),
)
