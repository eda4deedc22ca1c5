"""Targets: every file a run delivers (`rule all`), the paper figures, the model's metrics."""

HISTOGRAM_PROPERTIES = ("equivalent_diameter_nm", "feret_min_nm", "feret_max_nm", "circularity")


def sample_outputs(sample):
    out = [f"{RESULTS}/{sample}/particles.parquet", f"{RESULTS}/{sample}/summary.csv"]
    out += [f"{RESULTS}/{sample}/figures/histogram_{p}.png" for p in HISTOGRAM_PROPERTIES]
    if config["outputs"]["csv"]:
        out.append(f"{RESULTS}/{sample}/particles.csv")
    if config["outputs"]["xlsx"]:
        out.append(f"{RESULTS}/{sample}/particles.xlsx")
    for name in IMAGES[sample]:
        folder = image_dir(sample, name)
        out += [f"{folder}/{f}" for f in ("segmentation.png", "labels.tif", "overlay.png")]
        out += [f"{folder}/{f}" for f in ("particles.parquet", "particles.csv", "metadata.json")]
    if config["report_overlays_per_sample"] > 0:
        out.append(f"{RESULTS}/{sample}/report_overlays")
    if sample in SERIES:
        out += [f"{RESULTS}/{sample}/series.csv", f"{RESULTS}/{sample}/tracks.csv"]
        out += [f"{RESULTS}/{sample}/track_summary.csv"]
        out += [f"{RESULTS}/{sample}/figures/series_{p}.png" for p in ("diameter", "count")]
        out += [f"{RESULTS}/{sample}/figures/tracks.png"]
    return out


def get_final_outputs(wildcards=None):
    out = [path for sample in SAMPLES for path in sample_outputs(sample)]
    out += [f"{RESULTS}/summary.csv", f"{RESULTS}/figures/comparison.png"]
    if model_metrics_source():
        out.append(f"{RESULTS}/model/metrics.csv")
    return out


def get_paper_figures(wildcards=None):
    return [f"{RESULTS}/figures/{f}.png" for f in ("size_distribution", "segmentation_panel")]


def model_metrics_source():
    """metrics.json of the model in use, or None (threshold segmenter, or a model without one)."""
    if config["segmenter"] != "model":
        return None
    from nanomorph.segment.model import METRICS_FILE, find_model_folder

    try:
        path = find_model_folder(config.get("model")) / METRICS_FILE
    except ValueError as error:
        raise WorkflowError(f"config model: {error}") from None
    return str(path) if path.is_file() else None


def get_model_metrics_file(wildcards):
    return model_metrics_source() or []
