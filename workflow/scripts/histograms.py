"""Histograms of equivalent diameter, min/max Feret and circularity (mean ± SD and N drawn)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.outputs import read_table  # noqa: E402
from nanomorph.plots import save_histograms  # noqa: E402

# One PNG per property, named histogram_<property>.png, in the folder of the declared outputs.
save_histograms(
    read_table(snakemake.input[0]),  # noqa: F821
    Path(snakemake.output[0]).parent,  # noqa: F821
    title=snakemake.wildcards.sample,  # noqa: F821
)
