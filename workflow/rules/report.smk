localrules:
    model_metrics,
    figures,


rule model_metrics:
    """The segmentation model's test-set metrics from its model card, as a report table."""
    input:
        get_model_metrics_file,
    output:
        report(
            f"{RESULTS}/model/metrics.csv",
            caption="../report/model_metrics.rst",
            category="Model",
            labels={"table": "model metrics"},
        ),
    log:
        f"{RESULTS}/logs/model_metrics.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/model_metrics.py"


rule size_distribution_figure:
    """Publication figure: equivalent-diameter distribution of one sample with a fitted log-normal."""
    input:
        f"{RESULTS}/{figure_sample()}/particles.parquet",
    output:
        png=report(
            f"{RESULTS}/figures/size_distribution.png",
            caption="../report/size_distribution.rst",
            category="Paper figures",
            labels={"figure": "size distribution"},
        ),
        pdf=f"{RESULTS}/figures/size_distribution.pdf",
    params:
        sample=figure_sample(),
    log:
        f"{RESULTS}/logs/size_distribution_figure.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/size_distribution_figure.py"


rule segmentation_panel:
    """Publication figure: micrograph, semantic mask, separated instances and overlay of one image."""
    input:
        source=IMAGES[figure_sample()][figure_image()][0],
        segmentation=f"{image_dir(figure_sample(), figure_image())}/segmentation.png",
        labels=f"{image_dir(figure_sample(), figure_image())}/labels.tif",
        particles=f"{image_dir(figure_sample(), figure_image())}/particles.parquet",
    output:
        png=report(
            f"{RESULTS}/figures/segmentation_panel.png",
            caption="../report/segmentation_panel.rst",
            category="Paper figures",
            labels={"figure": "segmentation panel"},
        ),
        pdf=f"{RESULTS}/figures/segmentation_panel.pdf",
    params:
        title=f"{figure_sample()} / {figure_image()}",
        frame=IMAGES[figure_sample()][figure_image()][1],
        pixel_size_nm=SAMPLES[figure_sample()].get("pixel_size_nm"),
    log:
        f"{RESULTS}/logs/segmentation_panel.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/segmentation_panel.py"


rule figures:
    """Target: the publication figures, rebuilt from the config alone."""
    input:
        get_paper_figures,
