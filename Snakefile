# nanomorph: calibrated particle size and shape distributions from TEM micrographs.
# Run `snakemake --cores all` (profiles/default is picked up automatically) or
# `snakemake --profile profiles/slurm`; every config key is documented in config/README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/postprocess.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/train.smk"


rule all:
    default_target: True
    input:
        get_final_outputs,
