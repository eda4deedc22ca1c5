"""Particles of a series linked frame to frame with trackpy, per-track growth, and a plot."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.aggregate import track_particles, track_summary  # noqa: E402
from nanomorph.outputs import read_table, write_table  # noqa: E402
from nanomorph.plots import save_tracks_plot  # noqa: E402

particles = read_table(snakemake.input[0])  # noqa: F821
tracks = track_particles(
    particles,
    search_range_nm=snakemake.params.search_range_nm,  # noqa: F821
    memory=snakemake.params.memory,  # noqa: F821
)
summary = track_summary(tracks)
write_table(tracks, csv_path=snakemake.output.tracks)  # noqa: F821
write_table(summary, csv_path=snakemake.output.summary)  # noqa: F821
save_tracks_plot(tracks, snakemake.output.figure)  # noqa: F821
logging.info("%d particles linked into %d tracks", len(tracks), len(summary))
