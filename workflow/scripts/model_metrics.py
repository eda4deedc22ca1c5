"""The segmentation model's held-out test metrics (metrics.json of its folder) as a table."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402
from nanomorph.outputs import write_table  # noqa: E402


def flatten(value, prefix=""):
    """Nested JSON as (key path, scalar) rows; lists of numbers are kept as one text cell."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, json.dumps(value)
    else:
        yield prefix, value


source = Path(snakemake.input[0])  # noqa: F821
rows = list(flatten(json.loads(source.read_text())))
table = pd.DataFrame(rows, columns=["metric", "value"])
table.insert(0, "model", source.parent.name)
write_table(table, csv_path=snakemake.output[0])  # noqa: F821
