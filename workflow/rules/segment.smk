rule segment:
    """Semantic segmentation of a batch of images of one sample, loading the model once."""
    priority: PRIORITY_AFTER_INGEST["segment"]
    input:
        # The pixels are read from the micrographs' own files (no copy is kept).
        sources=get_chunk_sources,
        micrographs=get_chunk_micrographs,
    output:
        temp(directory(f"{RESULTS}/{{sample}}/segment/chunk_{{chunk}}")),
    params:
        names=get_chunk_names,
        segmenter=get_segmenter_settings,
        seconds_per_megapixel=config["segment_seconds_per_megapixel"],
        # Outside the output (temporary, and deleted when a job fails): a retry, or a rerun after
        # a change downstream, takes the masks already made from here.
        mask_cache=lambda wildcards: mask_cache_dir(wildcards.sample),
    log:
        f"{RESULTS}/logs/segment/{{sample}}/chunk_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segment/{{sample}}/chunk_{{chunk}}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: 4
    resources:
        mem_mb=get_segment_memory,
        runtime=get_segment_runtime,
        gpu=1 if uses_gpu() else 0,
    script:
        "../scripts/segment.py"
