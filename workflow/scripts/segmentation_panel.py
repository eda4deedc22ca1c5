"""Publication figure: micrograph, semantic mask, separated instances and measured outlines."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from nanomorph.io import iter_micrographs  # noqa: E402
from nanomorph.outputs import read_labels_tif, read_mask_png, read_table  # noqa: E402
from nanomorph.plots import save_segmentation_panel  # noqa: E402

# Read from the source file (as ingest does), not from ingest's temporary copy, so that redrawing
# the figure never re-runs the analysis.
frame = snakemake.params.frame or 0  # noqa: F821
micrographs = iter_micrographs(snakemake.input.source, snakemake.params.pixel_size_nm)  # noqa: F821
micrograph = next(m for index, m in enumerate(micrographs) if index == frame)
# Writes the .png and the .pdf next to each other.
save_segmentation_panel(
    snakemake.output.png,  # noqa: F821
    micrograph.image,
    read_mask_png(snakemake.input.segmentation),  # noqa: F821
    read_labels_tif(snakemake.input.labels),  # noqa: F821
    micrograph.pixel_size_nm,
    particles=read_table(snakemake.input.particles),  # noqa: F821
    formats=("png", "pdf"),
)
