rule measure:
    """One row per particle (units in the column names) and the image's metadata.json."""
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
        mem_mb=2000,
        runtime=per_image_runtime("measure"),
    script:
        "../scripts/measure.py"


rule overlay:
    """The micrograph with particle outlines; separated particles in another colour."""
    input:
        image=f"{RESULTS}/{{sample}}/images/{{image}}/image.tif",
        labels=f"{RESULTS}/{{sample}}/images/{{image}}/labels.tif",
        particles=f"{RESULTS}/{{sample}}/images/{{image}}/particles.parquet",
    output:
        report(
            f"{RESULTS}/{{sample}}/images/{{image}}/overlay.png",
            caption="../report/overlay.rst",
            category="Overlays",
            subcategory="{sample}",
            labels={"sample": "{sample}", "image": "{image}"},
        ),
    log:
        f"{RESULTS}/logs/overlay/{{sample}}/{{image}}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=per_image_runtime("overlay"),
    script:
        "../scripts/overlay.py"
