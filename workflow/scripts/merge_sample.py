"""All particles of a sample in one table, with the sample name, frame order and frame time."""

import json
import logging
import sys
from pathlib import Path

from nanomorph.aggregate import merge_tables
from nanomorph.outputs import write_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

sample = smk.wildcards.sample
tables = smk.input.tables
metadata = [json.loads(Path(p).read_text()) for p in smk.input.metadata]
merged = merge_tables(tables, sample=sample)

# A series made of separate files has no frame numbers of its own: its frames are the images in
# acquisition (sorted) order, as the sample sheet promises.
if smk.params.series:
    order = {meta["image"]: index for index, meta in enumerate(metadata)}
    merged["frame"] = merged["image"].map(order).astype("Int64")
times = {meta["image"]: meta.get("time_s") for meta in metadata}
if any(t is not None for t in times.values()):
    merged["time_s"] = merged["image"].map(times).astype(float)
write_table(merged, parquet_path=smk.output[0])
logging.info("%s: %d particles from %d images", sample, len(merged), len(tables))
