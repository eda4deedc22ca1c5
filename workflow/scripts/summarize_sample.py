"""Summary statistics of a sample, including particles the separation had to exclude."""

import json
import logging
import sys
from pathlib import Path

from nanomorph.aggregate import summarize
from nanomorph.outputs import read_table, write_table
from nanomorph.pipeline import skip_reason

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

particles = read_table(smk.input.particles)
metadata = [json.loads(Path(p).read_text()) for p in smk.input.metadata]
excluded = {meta["image"]: int(meta.get("n_excluded", 0)) for meta in metadata}
summary = summarize(
    particles,
    n_boot=smk.params.n_boot,
    seed=smk.params.seed,
    group_by=None,
    excluded=excluded,
)
summary.insert(0, "sample", smk.wildcards.sample)
# Images without particles count; images skipped as unreadable (unreadable_images: skip) do not.
skipped = [meta["image"] for meta in metadata if skip_reason(meta) is not None]
summary["n_images"] = len(metadata) - len(skipped)
summary["n_images_skipped"] = len(skipped)
if skipped:
    logging.warning(
        "%d of %d images skipped as unreadable: %s", len(skipped), len(metadata), ", ".join(skipped)
    )
write_table(summary, csv_path=smk.output[0])
