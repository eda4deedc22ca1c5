"""The merged particle table of a sample as CSV."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.outputs import read_table, write_table  # noqa: E402

write_table(read_table(snakemake.input[0]), csv_path=snakemake.output[0])  # noqa: F821
