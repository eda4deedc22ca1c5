"""The segmentation model's held-out test metrics (metrics.json of its folder) as a table."""

import json
import sys
from pathlib import Path

import pandas as pd

from nanomorph.outputs import write_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")


def flatten(value, prefix=""):
    """Nested JSON as (key path, scalar) rows; lists of numbers are kept as one text cell."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, json.dumps(value)
    else:
        yield prefix, value


source = Path(smk.input[0])
rows = list(flatten(json.loads(source.read_text())))
table = pd.DataFrame(rows, columns=["metric", "value"])
table.insert(0, "model", source.parent.name)
write_table(table, csv_path=smk.output[0])
