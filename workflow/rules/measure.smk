rule measure:
    """One row per particle (units in the column names) and the image's metadata.json."""
    priority: PRIORITY_AFTER_INGEST["measure"]
    input:
        separation=f"{RESULTS}/{{sample}}/images/{{image}}/separation.npz",
        micrograph=f"{RESULTS}/{{sample}}/images/{{image}}/micrograph.json",
    output:
        parquet=f"{RESULTS}/{{sample}}/images/{{image}}/particles.parquet",
        csv=f"{RESULTS}/{{sample}}/images/{{image}}/particles.csv",
        metadata=f"{RESULTS}/{{sample}}/images/{{image}}/metadata.json",
    params:
        analysis=get_analysis_settings,
        segmenter=get_segmenter_settings,
    log:
        f"{RESULTS}/logs/measure/{{sample}}/{{image}}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=per_image_memory("measure"),
        runtime=per_image_runtime("measure"),
    script:
        "../scripts/measure.py"


rule overlay:
    """The micrograph with particle outlines; separated particles in another colour."""
    priority: PRIORITY_AFTER_INGEST["overlay"]
    input:
        # Drawn on: read again from the micrograph's own file, as metadata.json records it.
        source=get_source,
        labels=f"{RESULTS}/{{sample}}/images/{{image}}/labels.tif",
        particles=f"{RESULTS}/{{sample}}/images/{{image}}/particles.parquet",
        metadata=f"{RESULTS}/{{sample}}/images/{{image}}/metadata.json",
    output:
        f"{RESULTS}/{{sample}}/images/{{image}}/overlay.png",
    log:
        f"{RESULTS}/logs/overlay/{{sample}}/{{image}}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=per_image_memory("overlay"),
        runtime=per_image_runtime("overlay"),
    script:
        "../scripts/overlay.py"


localrules:
    report_overlays,


rule report_overlays:
    """JPEG copies of some of a sample's overlays for the HTML report (all of them are written
    as PNG): at most report_overlays_per_sample, evenly through the sample, at most 2048 px."""
    input:
        get_report_overlays,
    output:
        report(
            directory(f"{RESULTS}/{{sample}}/report_overlays"),
            patterns=["{name}.jpg"],
            caption="../report/overlay.rst",
            category="Overlays",
            subcategory="{sample}",
            labels={"sample": "{sample}", "image": "{name}"},
        ),
    params:
        names=get_report_overlay_names,
    log:
        f"{RESULTS}/logs/report_overlays/{{sample}}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/report_overlays.py"
