"""Per-frame particle count and size statistics of an in-situ series, and their plots."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.aggregate import series_statistics  # noqa: E402
from nanomorph.outputs import read_table, write_table  # noqa: E402
from nanomorph.plots import save_series_plots  # noqa: E402

particles = read_table(snakemake.input.particles)  # noqa: F821
n_frames = len(snakemake.input.metadata)  # noqa: F821
# Every frame appears, also one without particles (count 0).
stats = series_statistics(particles, frames=list(range(n_frames)))
write_table(stats, csv_path=snakemake.output.table)  # noqa: F821
# Writes series_diameter.png and series_count.png into the figures folder.
save_series_plots(stats, Path(snakemake.output.diameter).parent)  # noqa: F821
