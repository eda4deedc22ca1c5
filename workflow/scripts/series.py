"""Per-frame particle count and size statistics of an in-situ series, and their plots."""

import sys
from pathlib import Path

from nanomorph.aggregate import series_statistics
from nanomorph.outputs import read_table, write_table
from nanomorph.plots import save_series_plots

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

particles = read_table(smk.input.particles)
n_frames = len(smk.input.metadata)
# Every frame appears, also one without particles (count 0).
stats = series_statistics(particles, frames=list(range(n_frames)))
write_table(stats, csv_path=smk.output.table)
# Writes series_diameter.png and series_count.png into the figures folder.
save_series_plots(stats, Path(smk.output.diameter).parent)
