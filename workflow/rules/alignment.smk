# Conventional alignment: model x subject and brain x brain scores for every measure.


rule model_brain:
    input:
        features="results/features/{model}.npz",
        subject="results/brain/sub-{subject}.npz",
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        scores="results/alignment/model_brain/{model}/sub-{subject}.parquet",
        null="results/alignment/model_brain_null/{model}/sub-{subject}.npz",
    params:
        cfg=model_brain_cfg,
    log:
        "results/logs/model_brain/{model}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/model_brain/{model}/sub-{subject}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("model_brain"),
        runtime=runtime("model_brain"),
    conda:
        ENV
    script:
        "../scripts/model_brain.py"


rule brain_brain:
    input:
        subjects=subject_files(),
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        "results/alignment/brain_brain/{measure}/sub-{subject}.parquet",
        boot="results/alignment/brain_brain_boot/{measure}/sub-{subject}.npz",
    params:
        cfg=brain_brain_cfg,
    log:
        "results/logs/brain_brain/{measure}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/brain_brain/{measure}/sub-{subject}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("brain_brain"),
        runtime=runtime("brain_brain"),
    conda:
        ENV
    script:
        "../scripts/brain_brain.py"


rule gather_alignment:
    input:
        model_brain=model_brain_files(),
        brain_brain=brain_brain_files(),
        ceilings="results/tables/ceilings.parquet",
        lib=lib("io.py", "patterns"),
    output:
        model_brain="results/tables/model_brain.parquet",
        summary="results/tables/model_brain_summary.parquet",
        brain_brain="results/tables/brain_brain.parquet",
    params:
        cfg=cfg_for("measures"),
    log:
        "results/logs/gather_alignment.log",
    benchmark:
        "results/benchmarks/gather_alignment.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("gather_alignment"),
        runtime=runtime("gather_alignment"),
    conda:
        ENV
    script:
        "../scripts/gather_alignment.py"
