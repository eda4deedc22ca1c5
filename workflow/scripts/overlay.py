"""The micrograph with particle outlines; separated particles in another colour."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import tifffile  # noqa: E402
from nanomorph.outputs import read_labels_tif, read_table  # noqa: E402
from nanomorph.plots import save_overlay  # noqa: E402

particles = read_table(snakemake.input.particles)  # noqa: F821
separated = particles.loc[particles["separated"].astype(bool), "particle_id"]
save_overlay(
    snakemake.output[0],  # noqa: F821
    tifffile.imread(snakemake.input.image),  # noqa: F821
    read_labels_tif(snakemake.input.labels),  # noqa: F821
    particles=particles,
    separated_ids={int(i) for i in separated},
)
