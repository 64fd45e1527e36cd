# Dataset: synthesis (embedded default), checks and per-subject preparation.


if CFG["dataset"].get("synthesize"):

    rule synthesize:
        input:
            lib("synth", "features", "measures/ceilings.py"),
        output:
            directory(DATA_ROOT),
        params:
            cfg=cfg_for("dataset", "features"),
        log:
            "results/logs/synthesize.log",
        benchmark:
            "results/benchmarks/synthesize.tsv"
        threads: 2
        resources:
            mem_mb=mem_mb("synthesize"),
            runtime=runtime("synthesize"),
        conda:
            ENV
        script:
            "../scripts/synthesize.py"


rule check_data:
    input:
        dataset=dataset_input(),
        lib=lib("data"),
    output:
        table="results/data/check_data.parquet",
        info="results/data/dataset.json",
    params:
        cfg=cfg_for("dataset", "subjects", "rois", "reliability_threshold", "min_vertices", "lp",
                    "nan_betas"),
    log:
        "results/logs/check_data.log",
    benchmark:
        "results/benchmarks/check_data.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("check_data"),
        runtime=runtime("check_data"),
    conda:
        ENV
    script:
        "../scripts/check_data.py"


rule prepare_brain:
    input:
        dataset=dataset_input(),
        info="results/data/dataset.json",
        lib=lib("data"),
    output:
        "results/brain/sub-{subject}.npz",
    params:
        cfg=cfg_for("dataset", "subjects", "rois", "reliability_threshold", "min_vertices", "lp",
                    "nan_betas"),
    log:
        "results/logs/prepare_brain/sub-{subject}.log",
    benchmark:
        "results/benchmarks/prepare_brain/sub-{subject}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("prepare_brain"),
        runtime=runtime("prepare_brain"),
    conda:
        ENV
    script:
        "../scripts/prepare_brain.py"


rule ceilings:
    input:
        subjects=subject_files(),
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        "results/tables/ceilings.parquet",
    params:
        cfg=ceilings_cfg,
    log:
        "results/logs/ceilings.log",
    benchmark:
        "results/benchmarks/ceilings.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("ceilings"),
        runtime=runtime("ceilings"),
    conda:
        ENV
    script:
        "../scripts/ceilings.py"
