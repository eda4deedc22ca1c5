"""The merged particle table of a sample as CSV."""

import sys

from nanomorph.outputs import read_table, write_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

write_table(read_table(smk.input[0]), csv_path=smk.output[0])
