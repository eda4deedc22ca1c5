rule ingest:
    """Read one micrograph (or one frame of a stack) and fix its calibration."""
    priority: INGEST_PRIORITY
    input:
        get_source,
    output:
        temp(f"{RESULTS}/{{sample}}/images/{{image}}/micrograph.json"),
    params:
        frame=get_frame,
        pixel_size_nm=get_pixel_size,
        unreadable=config["unreadable_images"],
    log:
        f"{RESULTS}/logs/ingest/{{sample}}/{{image}}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=get_ingest_memory,
        runtime=get_ingest_runtime,
    script:
        "../scripts/ingest.py"
