"""Measure every particle of one image; write the particle table and metadata.json."""

import json
import logging
import pickle
import sys
from pathlib import Path

from nanomorph.measure import empty_particle_table, measure_particles
from nanomorph.outputs import write_json, write_table
from nanomorph.pipeline import AnalysisResult, image_metadata, skip_reason

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)


class StoredMicrograph:
    """The parts of a Micrograph that metadata.json needs, as ingest stored them."""

    def __init__(self, record):
        self.record = dict(record)
        self.name = self.record.pop("name")

    def metadata(self):
        return dict(self.record)


with open(smk.input.separation, "rb") as handle:
    payload = pickle.load(handle)
micrograph = StoredMicrograph(json.loads(Path(smk.input.micrograph).read_text()))
meta = micrograph.metadata()
skipped = skip_reason(meta)
if skipped is not None:
    # Skipped at ingest (unreadable_images: skip): an empty table, and the reason on record.
    table = empty_particle_table()
else:
    table = measure_particles(
        payload["separation"].particles,
        meta["pixel_size_nm"],
        image=micrograph.name,
        frame=meta["frame"],
    )
write_table(table, smk.output.parquet, smk.output.csv)
result = AnalysisResult(semantic_mask=None, separation=payload["separation"], particles=table)
metadata = image_metadata(micrograph, result, payload["segmenter"], payload["parameters"])
write_json(smk.output.metadata, metadata)
logging.info("%s: %d particles measured", micrograph.name, len(table))
