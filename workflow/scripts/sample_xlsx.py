"""The merged particle table as an Excel workbook: one combined sheet and one sheet per image."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.aggregate import write_xlsx  # noqa: E402
from nanomorph.outputs import read_table  # noqa: E402

write_xlsx(snakemake.output[0], read_table(snakemake.input[0]))  # noqa: F821
