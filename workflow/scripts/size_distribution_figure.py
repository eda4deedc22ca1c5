"""Publication figure: equivalent-diameter histogram of one sample with a fitted log-normal."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.outputs import read_table  # noqa: E402
from nanomorph.plots import save_size_distribution_figure  # noqa: E402

# Writes the .png and the .pdf next to each other.
save_size_distribution_figure(
    read_table(snakemake.input[0]),  # noqa: F821
    snakemake.output.png,  # noqa: F821
    fit="lognormal",
    formats=("png", "pdf"),
)
