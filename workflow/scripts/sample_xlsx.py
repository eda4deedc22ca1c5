"""The merged particle table as an Excel workbook: one combined sheet and one sheet per image
(nanomorph.aggregate.write_xlsx: within Excel's limits, streamed row by row)."""

import sys

from nanomorph.aggregate import write_xlsx
from nanomorph.outputs import read_table

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = open(smk.log[0], "w")

write_xlsx(smk.output[0], read_table(smk.input[0]))
