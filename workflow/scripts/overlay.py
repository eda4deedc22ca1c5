"""The micrograph with particle outlines; separated particles in another colour."""

import logging
import sys

import tifffile

from nanomorph.outputs import read_labels_tif, read_table
from nanomorph.plots import save_overlay

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

particles = read_table(smk.input.particles)
separated = particles.loc[particles["separated"].astype(bool), "particle_id"]
save_overlay(
    smk.output[0],
    tifffile.imread(smk.input.image),
    read_labels_tif(smk.input.labels),
    particles=particles,
    separated_ids={int(i) for i in separated},
)
