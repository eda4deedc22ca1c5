"""All particles of a sample in one table, with the sample name, frame order and frame time."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nanomorph.aggregate import merge_tables  # noqa: E402
from nanomorph.outputs import write_table  # noqa: E402

sample = snakemake.wildcards.sample  # noqa: F821
tables = snakemake.input.tables  # noqa: F821
metadata = [json.loads(Path(p).read_text()) for p in snakemake.input.metadata]  # noqa: F821
merged = merge_tables(tables, sample=sample)

# A series made of separate files has no frame numbers of its own: its frames are the images in
# acquisition (sorted) order, as the sample sheet promises.
if snakemake.params.series:  # noqa: F821
    order = {meta["image"]: index for index, meta in enumerate(metadata)}
    merged["frame"] = merged["image"].map(order).astype("Int64")
times = {meta["image"]: meta.get("time_s") for meta in metadata}
if any(t is not None for t in times.values()):
    merged["time_s"] = merged["image"].map(times).astype(float)
write_table(merged, parquet_path=snakemake.output[0])  # noqa: F821
logging.info("%s: %d particles from %d images", sample, len(merged), len(tables))
