rule postprocess:
    """Despeckle the semantic mask, then separate touching/overlapping particles into instances."""
    input:
        chunk=get_chunk_dir,
        micrograph=f"{RESULTS}/{{sample}}/images/{{image}}/micrograph.json",
    output:
        segmentation=f"{RESULTS}/{{sample}}/images/{{image}}/segmentation.png",
        labels=f"{RESULTS}/{{sample}}/images/{{image}}/labels.tif",
        separation=temp(f"{RESULTS}/{{sample}}/images/{{image}}/separation.npz"),
    params:
        analysis=config["analysis"],
    log:
        f"{RESULTS}/logs/postprocess/{{sample}}/{{image}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/postprocess/{{sample}}/{{image}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/postprocess.py"
