rule postprocess:
    """Despeckle the semantic mask, separate touching/overlapping particles, check their contrast."""
    priority: PRIORITY_AFTER_INGEST["postprocess"]
    input:
        chunk=get_chunk_dir,
        # Read (for the contrast check of a declared polarity) from the micrograph's own file.
        source=get_source,
        micrograph=f"{RESULTS}/{{sample}}/images/{{image}}/micrograph.json",
    output:
        segmentation=f"{RESULTS}/{{sample}}/images/{{image}}/segmentation.png",
        labels=f"{RESULTS}/{{sample}}/images/{{image}}/labels.tif",
        separation=temp(f"{RESULTS}/{{sample}}/images/{{image}}/separation.npz"),
    params:
        analysis=get_analysis_settings,
    log:
        f"{RESULTS}/logs/postprocess/{{sample}}/{{image}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/postprocess/{{sample}}/{{image}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=per_image_memory("postprocess"),
        runtime=per_image_runtime("postprocess"),
    script:
        "../scripts/postprocess.py"
