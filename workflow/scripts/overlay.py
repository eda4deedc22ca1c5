"""The micrograph with particle outlines; separated particles in another colour."""

import json
import logging
import sys
from pathlib import Path

from nanomorph.outputs import read_labels_tif, read_table
from nanomorph.pipeline import read_recorded_image, skip_reason
from nanomorph.plots import save_overlay, save_skipped_image_note

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

metadata = json.loads(Path(smk.input.metadata).read_text())
skipped = skip_reason(metadata)
if skipped is not None:
    # Skipped at ingest (unreadable_images: skip): no pixels to draw on; say why instead.
    save_skipped_image_note(smk.output[0], smk.wildcards.image, skipped)
else:
    particles = read_table(smk.input.particles)
    separated = particles.loc[particles["separated"].astype(bool), "particle_id"]
    save_overlay(
        smk.output[0],
        read_recorded_image(metadata),
        read_labels_tif(smk.input.labels),
        particles=particles,
        separated_ids={int(i) for i in separated},
    )
