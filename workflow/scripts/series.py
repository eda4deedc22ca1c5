"""Per-frame particle count and size statistics of an in-situ series, and their plots."""

import json
import sys
from pathlib import Path

from nanomorph.aggregate import series_statistics
from nanomorph.outputs import read_table, write_table
from nanomorph.pipeline import skip_reason
from nanomorph.plots import save_series_plots

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

particles = read_table(smk.input.particles)
metadata = [json.loads(Path(path).read_text()) for path in smk.input.metadata]
# Every frame appears, also one without particles (count 0), except frames skipped as
# unreadable (unreadable_images: skip): of those nothing is known, and 0 would be a claim.
frames = [index for index, meta in enumerate(metadata) if skip_reason(meta) is None]
stats = series_statistics(particles, frames=frames)
write_table(stats, csv_path=smk.output.table)
# Writes series_diameter.png and series_count.png into the figures folder.
save_series_plots(stats, Path(smk.output.diameter).parent)
