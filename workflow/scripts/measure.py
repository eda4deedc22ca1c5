"""Measure every particle of one image; write the particle table and metadata.json."""

import json
import logging
import pickle
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.measure import measure_particles  # noqa: E402
from nanomorph.outputs import write_json, write_table  # noqa: E402
from nanomorph.pipeline import AnalysisResult, image_metadata  # noqa: E402


class StoredMicrograph:
    """The parts of a Micrograph that metadata.json needs, as ingest stored them."""

    def __init__(self, record):
        self.record = dict(record)
        self.name = self.record.pop("name")

    def metadata(self):
        return dict(self.record)


with open(snakemake.input.separation, "rb") as handle:  # noqa: F821
    payload = pickle.load(handle)
micrograph = StoredMicrograph(json.loads(Path(snakemake.input.micrograph).read_text()))  # noqa: F821
meta = micrograph.metadata()
table = measure_particles(
    payload["separation"].particles, meta["pixel_size_nm"], image=micrograph.name,
    frame=meta["frame"],
)
write_table(table, snakemake.output.parquet, snakemake.output.csv)  # noqa: F821
result = AnalysisResult(semantic_mask=None, separation=payload["separation"], particles=table)
metadata = image_metadata(micrograph, result, payload["segmenter"], payload["parameters"])
write_json(snakemake.output.metadata, metadata)  # noqa: F821
logging.info("%s: %d particles measured", micrograph.name, len(table))
