# Stimulus features: frames decoded once, then one extraction job per model.


rule frames:
    input:
        dataset=dataset_input(),
        info="results/data/dataset.json",
        lib=lib("features/frames.py"),
    output:
        "results/features/frames.npz",
    params:
        cfg=cfg_for("dataset", "features"),
    log:
        "results/logs/frames.log",
    benchmark:
        "results/benchmarks/frames.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("frames"),
        runtime=runtime("frames"),
    conda:
        ENV
    script:
        "../scripts/frames.py"


rule extract:
    input:
        frames="results/features/frames.npz",
        registry=str(REPO / "resources" / "models.yaml"),
        lib=lib("features"),
    output:
        "results/features/{model}.npz",
    params:
        cfg=model_cfg,
    log:
        "results/logs/extract/{model}.log",
    benchmark:
        "results/benchmarks/extract/{model}.tsv"
    threads: 2
    resources:
        mem_mb=mem_mb("extract"),
        runtime=runtime("extract"),
        gpu=GPU,
    conda:
        ENV
    script:
        "../scripts/extract.py"
