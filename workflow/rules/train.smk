localrules:
    train,


rule train:
    """Target (not part of `all`): train the model named by config train.name."""
    input:
        f"resources/models/{config['train']['name']}/model.safetensors",


rule train_model:
    """Run the project's training command into resources/models/<name>/."""
    output:
        weights="resources/models/{name}/model.safetensors",
        config="resources/models/{name}/config.json",
        metrics="resources/models/{name}/metrics.json",
    wildcard_constraints:
        # Only the configured name, so a missing metrics.json of another model never triggers training.
        name=re.escape(config["train"]["name"]),
    params:
        extra=config["train"]["args"],
        device=config["device"],
        precision=config["precision"],
    log:
        "logs/train/{name}.log",
    benchmark:
        "benchmarks/train/{name}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: workflow.cores
    resources:
        mem_mb=16000,
        runtime=240,
        gpu=1 if config["device"] == "cuda" else 0,
    script:
        "../scripts/train.py"
