# brain_avg baseline (SPEC.md §4): the vertex-wise mean of k held-out subjects stands in.
# Scores per target subject, every measure inside (parallel over subjects; LP dominates), APS
# for all measures at once.


rule brain_avg:
    input:
        subjects=subject_files(),
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        expand("results/alignment/brain_avg/{measure}/sub-{{subject}}.parquet", measure=MEASURES),
    params:
        cfg=brain_avg_cfg,
        measures=MEASURES,
    log:
        "results/logs/brain_avg/sub-{subject}.log",
    benchmark:
        "results/benchmarks/brain_avg/sub-{subject}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("brain_avg"),
        runtime=runtime("brain_avg"),
    conda:
        ENV
    script:
        "../scripts/brain_avg.py"


rule apa_brain_avg:
    input:
        brain_brain="results/tables/brain_brain.parquet",
        scores=brain_avg_files(),
        ceilings="results/tables/ceilings.parquet",
        lib=lib("patterns"),
    output:
        "results/tables/apa_brain_avg.parquet",
    params:
        cfg=cfg_for("dataset", "subjects", "rois", "measures", "apa"),
    log:
        "results/logs/apa_brain_avg.log",
    benchmark:
        "results/benchmarks/apa_brain_avg.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("apa_brain_avg"),
        runtime=runtime("apa_brain_avg"),
    conda:
        ENV
    script:
        "../scripts/apa_brain_avg.py"
