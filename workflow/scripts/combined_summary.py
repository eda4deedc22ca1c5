"""Every sample's summary in one table (one row per sample and property)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402
from nanomorph.outputs import write_table  # noqa: E402

combined = pd.concat([pd.read_csv(p) for p in snakemake.input], ignore_index=True)  # noqa: F821
write_table(combined, csv_path=snakemake.output[0])  # noqa: F821
