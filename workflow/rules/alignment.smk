# Conventional alignment: model x subject and brain x brain scores for every measure.


rule model_brain:
    input:
        features="results/features/{model}.npz",
        decomposed=decomposed_input,
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
        cfg=cfg_for("measures", "apa", "seed"),
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


# Within-subject matrices on disjoint (odd/even) test repetitions: a secondary check, kept out of
# brain_brain so that no APA reference can include them.
rule brain_within:
    input:
        subjects=subject_files(),
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        "results/alignment/brain_within/{measure}.parquet",
    params:
        cfg=cfg_for("rois", "lp"),
    log:
        "results/logs/brain_within/{measure}.log",
    benchmark:
        "results/benchmarks/brain_within/{measure}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("brain_brain"),
        runtime=runtime("brain_brain"),
    conda:
        ENV
    script:
        "../scripts/brain_within.py"


rule gather_brain_within:
    input:
        tables=expand("results/alignment/brain_within/{measure}.parquet", measure=MEASURES),
        brain_brain="results/tables/brain_brain.parquet",
        lib=lib("io.py", "patterns"),
    output:
        table="results/tables/brain_within.parquet",
        summary="results/tables/brain_within_summary.parquet",
    params:
        cfg=cfg_for("measures", "subjects", "rois", "apa"),
    log:
        "results/logs/gather_brain_within.log",
    benchmark:
        "results/benchmarks/gather_brain_within.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("gather_brain_within"),
        runtime=runtime("gather_brain_within"),
    conda:
        ENV
    script:
        "../scripts/gather_brain_within.py"
