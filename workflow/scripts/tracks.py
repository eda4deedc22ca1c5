"""Particles of a series linked frame to frame with trackpy, per-track growth, and a plot."""

import logging
import sys

from nanomorph.aggregate import track_particles, track_summary
from nanomorph.outputs import read_table, write_table
from nanomorph.plots import save_tracks_plot

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

particles = read_table(smk.input[0])
tracks = track_particles(
    particles,
    search_range_nm=smk.params.search_range_nm,
    memory=smk.params.memory,
)
summary = track_summary(tracks)
write_table(tracks, csv_path=smk.output.tracks)
write_table(summary, csv_path=smk.output.summary)
save_tracks_plot(tracks, smk.output.figure)
logging.info("%d particles linked into %d tracks", len(tracks), len(summary))
