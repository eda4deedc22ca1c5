localrules:
    merge_sample,
    sample_csv,
    sample_xlsx,
    combined_summary,


rule merge_sample:
    """All particles of a sample in one table, in acquisition order."""
    input:
        tables=get_sample_tables,
        metadata=get_sample_metadata,
    output:
        f"{RESULTS}/{{sample}}/particles.parquet",
    params:
        series=is_series,
    log:
        f"{RESULTS}/logs/merge_sample/{{sample}}.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/merge_sample.py"


rule sample_csv:
    """The merged particle table as CSV (config outputs.csv)."""
    input:
        f"{RESULTS}/{{sample}}/particles.parquet",
    output:
        f"{RESULTS}/{{sample}}/particles.csv",
    log:
        f"{RESULTS}/logs/sample_csv/{{sample}}.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/sample_csv.py"


rule sample_xlsx:
    """One combined sheet plus one sheet per image (up to 500 images), units in the headers."""
    input:
        f"{RESULTS}/{{sample}}/particles.parquet",
    output:
        f"{RESULTS}/{{sample}}/particles.xlsx",
    log:
        f"{RESULTS}/logs/sample_xlsx/{{sample}}.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/sample_xlsx.py"


rule summarize_sample:
    """Count, mean, SD, median, percentiles and bootstrap 95 % interval of the mean per property."""
    input:
        particles=f"{RESULTS}/{{sample}}/particles.parquet",
        metadata=get_sample_metadata,
    output:
        report(
            f"{RESULTS}/{{sample}}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"sample": "{sample}", "table": "summary"},
        ),
    params:
        n_boot=config["statistics"]["bootstrap_n"],
        seed=config["statistics"]["seed"],
    log:
        f"{RESULTS}/logs/summarize_sample/{{sample}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_sample/{{sample}}.tsv"
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/summarize_sample.py"


rule combined_summary:
    """The per-sample summaries side by side, one row per sample and property."""
    input:
        expand(f"{RESULTS}/{{sample}}/summary.csv", sample=SAMPLES),
    output:
        report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"sample": "all", "table": "summary"},
        ),
    params:
        samples=list(SAMPLES),
    log:
        f"{RESULTS}/logs/combined_summary.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/combined_summary.py"


rule histograms:
    """Histograms of equivalent diameter, min/max Feret and circularity with mean ± SD and N."""
    input:
        f"{RESULTS}/{{sample}}/particles.parquet",
    output:
        report(
            f"{RESULTS}/{{sample}}/figures/histogram_equivalent_diameter_nm.png",
            caption="../report/histograms.rst",
            category="Size distributions",
            labels={"sample": "{sample}", "figure": "equivalent diameter"},
        ),
        report(
            f"{RESULTS}/{{sample}}/figures/histogram_feret_min_nm.png",
            caption="../report/histograms.rst",
            category="Size distributions",
            labels={"sample": "{sample}", "figure": "minimum Feret diameter"},
        ),
        report(
            f"{RESULTS}/{{sample}}/figures/histogram_feret_max_nm.png",
            caption="../report/histograms.rst",
            category="Size distributions",
            labels={"sample": "{sample}", "figure": "maximum Feret diameter"},
        ),
        report(
            f"{RESULTS}/{{sample}}/figures/histogram_circularity.png",
            caption="../report/histograms.rst",
            category="Size distributions",
            labels={"sample": "{sample}", "figure": "circularity"},
        ),
    log:
        f"{RESULTS}/logs/histograms/{{sample}}.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/histograms.py"


rule comparison:
    """Size distributions of all samples on one figure."""
    input:
        expand(f"{RESULTS}/{{sample}}/particles.parquet", sample=SAMPLES),
    output:
        report(
            f"{RESULTS}/figures/comparison.png",
            caption="../report/comparison.rst",
            category="Size distributions",
            labels={"sample": "all", "figure": "comparison"},
        ),
    params:
        samples=list(SAMPLES),
    log:
        f"{RESULTS}/logs/comparison.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/comparison.py"


rule series:
    """Per-frame counts and size statistics of an in-situ series, and their plots."""
    input:
        particles=f"{RESULTS}/{{sample}}/particles.parquet",
        metadata=get_sample_metadata,
    output:
        table=report(
            f"{RESULTS}/{{sample}}/series.csv",
            caption="../report/series_table.rst",
            category="Series",
            labels={"sample": "{sample}", "item": "per-frame table"},
        ),
        diameter=report(
            f"{RESULTS}/{{sample}}/figures/series_diameter.png",
            caption="../report/series.rst",
            category="Series",
            labels={"sample": "{sample}", "item": "mean diameter per frame"},
        ),
        counts=report(
            f"{RESULTS}/{{sample}}/figures/series_count.png",
            caption="../report/series.rst",
            category="Series",
            labels={"sample": "{sample}", "item": "count per frame"},
        ),
    log:
        f"{RESULTS}/logs/series/{{sample}}.log",
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/series.py"


rule tracks:
    """Particles linked frame to frame (trackpy), to follow growth or coarsening."""
    input:
        f"{RESULTS}/{{sample}}/particles.parquet",
    output:
        tracks=f"{RESULTS}/{{sample}}/tracks.csv",
        summary=report(
            f"{RESULTS}/{{sample}}/track_summary.csv",
            caption="../report/tracks_table.rst",
            category="Series",
            labels={"sample": "{sample}", "item": "track table"},
        ),
        figure=report(
            f"{RESULTS}/{{sample}}/figures/tracks.png",
            caption="../report/tracks.rst",
            category="Series",
            labels={"sample": "{sample}", "item": "tracks"},
        ),
    params:
        search_range_nm=config["tracking"]["search_range_nm"],
        memory=config["tracking"]["memory"],
    log:
        f"{RESULTS}/logs/tracks/{{sample}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tracks/{{sample}}.tsv"
    conda:
        "../../envs/aggregate.yaml"
    script:
        "../scripts/tracks.py"
