# Alignment Pattern Analysis: one job per measure, then the combined tables.


rule apa:
    input:
        model_brain="results/tables/model_brain.parquet",
        brain_brain="results/tables/brain_brain.parquet",
        ceilings="results/tables/ceilings.parquet",
        nulls=model_brain_null_files(),
        boots=brain_brain_boot_files,
        adjacency=adjacency_input,
        lib=lib("patterns"),
    output:
        apa="results/apa/{measure}/apa.parquet",
        summary="results/apa/{measure}/apa_summary.parquet",
        nulls="results/apa/{measure}/apa_nulls.parquet",
        confusion="results/apa/{measure}/apa_confusion.parquet",
    params:
        cfg=apa_cfg(),
    log:
        "results/logs/apa/{measure}.log",
    benchmark:
        "results/benchmarks/apa/{measure}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("apa"),
        runtime=runtime("apa"),
    conda:
        ENV
    script:
        "../scripts/apa.py"


rule gather_apa:
    input:
        apa=expand("results/apa/{measure}/apa.parquet", measure=MEASURES),
        summary=expand("results/apa/{measure}/apa_summary.parquet", measure=MEASURES),
        nulls=expand("results/apa/{measure}/apa_nulls.parquet", measure=MEASURES),
        confusion=expand("results/apa/{measure}/apa_confusion.parquet", measure=MEASURES),
        lib=lib("io.py"),
    output:
        apa="results/tables/apa.parquet",
        summary="results/tables/apa_summary.parquet",
        nulls="results/tables/apa_nulls.parquet",
        confusion="results/tables/apa_confusion.parquet",
    params:
        cfg=cfg_for("measures"),
    log:
        "results/logs/gather_apa.log",
    benchmark:
        "results/benchmarks/gather_apa.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("gather_apa"),
        runtime=runtime("gather_apa"),
    conda:
        ENV
    script:
        "../scripts/gather_apa.py"


# One job per model (every measure inside): each measure is about a second of work, and the
# job's imports cost more than that.
rule whole_model:
    input:
        features="results/features/{model}.npz",
        model_brain="results/tables/model_brain.parquet",
        brain_brain="results/tables/brain_brain.parquet",
        info="results/data/dataset.json",
        lib=lib("patterns"),
    output:
        expand("results/apa/{measure}/whole_model/{{model}}.parquet", measure=MEASURES),
    params:
        cfg=cfg_for("subjects", "rois", "apa", "seed", "lp"),
        measures=MEASURES,
    log:
        "results/logs/whole_model/{model}.log",
    benchmark:
        "results/benchmarks/whole_model/{model}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("whole_model"),
        runtime=runtime("whole_model"),
    conda:
        ENV
    script:
        "../scripts/whole_model.py"


rule gather_whole_model:
    input:
        tables=expand("results/apa/{measure}/whole_model/{model}.parquet", measure=MEASURES,
                      model=MODELS),
        lib=lib("io.py"),
    output:
        "results/tables/apa_whole_model.parquet",
    params:
        cfg=cfg_for("measures"),
    log:
        "results/logs/gather_whole_model.log",
    benchmark:
        "results/benchmarks/gather_whole_model.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("gather_whole_model"),
        runtime=runtime("gather_whole_model"),
    conda:
        ENV
    script:
        "../scripts/gather_whole_model.py"
