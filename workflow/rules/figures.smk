# Figures: read tables only, one job per figure kind and measure.


rule figure_conventional:
    input:
        summary="results/tables/model_brain_summary.parquet",
        lib=lib("figures"),
    output:
        png=report(
            "results/figures/conventional_{measure}.png",
            caption="../report/conventional.rst",
            category="Conventional alignment",
            labels={"measure": "{measure}"},
        ),
        pdf="results/figures/conventional_{measure}.pdf",
    params:
        cfg=cfg_for("rois", "apa"),
    log:
        "results/logs/figures/conventional_{measure}.log",
    benchmark:
        "results/benchmarks/figures/conventional_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_conventional"),
        runtime=runtime("figure_conventional"),
    conda:
        ENV
    script:
        "../scripts/figure_conventional.py"


rule figure_brain_patterns:
    input:
        brain_brain="results/tables/brain_brain.parquet",
        lib=lib("figures"),
    output:
        png=report(
            "results/figures/brain_patterns_{measure}.png",
            caption="../report/brain_patterns.rst",
            category="Brain alignment patterns",
            labels={"measure": "{measure}"},
        ),
        pdf="results/figures/brain_patterns_{measure}.pdf",
    params:
        cfg=cfg_for("rois", "apa"),
    log:
        "results/logs/figures/brain_patterns_{measure}.log",
    benchmark:
        "results/benchmarks/figures/brain_patterns_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_brain_patterns"),
        runtime=runtime("figure_brain_patterns"),
    conda:
        ENV
    script:
        "../scripts/figure_brain_patterns.py"


rule figure_aps:
    input:
        summary="results/tables/apa_summary.parquet",
        lib=lib("figures"),
    output:
        png=report(
            "results/figures/aps_{measure}.png",
            caption="../report/aps.rst",
            category="Alignment Pattern Analysis",
            labels={"measure": "{measure}"},
        ),
        pdf="results/figures/aps_{measure}.pdf",
    params:
        cfg=cfg_for("rois", "apa"),
    log:
        "results/logs/figures/aps_{measure}.log",
    benchmark:
        "results/benchmarks/figures/aps_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_aps"),
        runtime=runtime("figure_aps"),
    conda:
        ENV
    script:
        "../scripts/figure_aps.py"
