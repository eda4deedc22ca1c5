"""Every sample's summary in one table (one row per sample and property)."""

import sys

import pandas as pd

from nanomorph.outputs import write_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

combined = pd.concat([pd.read_csv(p) for p in smk.input], ignore_index=True)
write_table(combined, csv_path=smk.output[0])
