"""Train the segmentation network with the project's own command and export the model folder."""

import shlex
import sys

from nanomorph.cli import main

# Snakemake's `script:` directive injects the `snakemake` object.
smk = snakemake  # noqa: F821
sys.stderr = sys.stdout = open(smk.log[0], "w")
name = smk.wildcards.name
args = [
    "train",
    "--out",
    f"work/train/{name}",
    "--name",
    name,
    "--export",
    f"resources/models/{name}",
    "--device",
    smk.params.device,
    "--precision",
    smk.params.precision,
    "--threads",
    str(smk.threads),
    "--quiet",
    *shlex.split(smk.params.extra),
]
sys.exit(main(args))
