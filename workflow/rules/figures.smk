# Figures: read tables only; one job per figure kind and measure. Every figure rule lists the
# figures library (and its style file) as input, so editing src/alignpatterns/figures/ reruns the
# figure rules and nothing else. Captions for `snakemake --report` live in workflow/report/.

from alignpatterns.config import roi_set

# stream -> ROIs of the configured ROI set (empty for an explicit ROI list): figures group by it.
_SET_STREAMS = roi_set(config["rois"], REPO).get("streams", {}) if isinstance(config["rois"], str) else {}
STREAMS = {s: [r for r in rs if r in ROIS] for s, rs in _SET_STREAMS.items() if set(rs) & set(ROIS)}
FIGURE_LIB = lib("figures") + [str(REPO / "src/alignpatterns/figures/alignpatterns.mplstyle")]


rule figure_conventional:
    input:
        model_brain_summary="results/tables/model_brain_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/conventional_{measure}.png",
            caption="../report/conventional.rst",
            category="Conventional alignment",
            subcategory="{measure}",
            labels={"figure": "conventional", "measure": "{measure}"},
        ),
        pdf="results/figures/conventional_{measure}.pdf",
    params:
        kind="conventional",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
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
        "../scripts/figure_render.py"


rule figure_layers:
    input:
        model_brain="results/tables/model_brain.parquet",
        model_brain_summary="results/tables/model_brain_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/layers_{measure}.png",
            caption="../report/layers.rst",
            category="Conventional alignment",
            subcategory="{measure}",
            labels={"figure": "layers", "measure": "{measure}"},
        ),
        pdf="results/figures/layers_{measure}.pdf",
    params:
        kind="layers",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/layers_{measure}.log",
    benchmark:
        "results/benchmarks/figures/layers_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_layers"),
        runtime=runtime("figure_layers"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule figure_brain_patterns:
    input:
        brain_brain="results/tables/brain_brain.parquet",
        ceilings="results/tables/ceilings.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/brain_patterns_{measure}.png",
            caption="../report/brain_patterns.rst",
            category="Brain alignment patterns",
            subcategory="{measure}",
            labels={"figure": "brain_patterns", "measure": "{measure}"},
        ),
        pdf="results/figures/brain_patterns_{measure}.pdf",
    params:
        kind="brain_patterns",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
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
        "../scripts/figure_render.py"


rule figure_aps:
    input:
        apa="results/tables/apa.parquet",
        apa_summary="results/tables/apa_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/aps_{measure}.png",
            caption="../report/aps.rst",
            category="Alignment Pattern Analysis",
            subcategory="{measure}",
            labels={"figure": "aps", "measure": "{measure}"},
        ),
        pdf="results/figures/aps_{measure}.pdf",
    params:
        kind="aps",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
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
        "../scripts/figure_render.py"


rule figure_profiles:
    input:
        brain_brain="results/tables/brain_brain.parquet",
        model_brain="results/tables/model_brain.parquet",
        model_brain_summary="results/tables/model_brain_summary.parquet",
        ceilings="results/tables/ceilings.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/profiles_{measure}.png",
            caption="../report/profiles.rst",
            category="Alignment Pattern Analysis",
            subcategory="{measure}",
            labels={"figure": "profiles", "measure": "{measure}"},
        ),
        pdf="results/figures/profiles_{measure}.pdf",
    params:
        kind="profiles",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/profiles_{measure}.log",
    benchmark:
        "results/benchmarks/figures/profiles_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_profiles"),
        runtime=runtime("figure_profiles"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule figure_score_vs_aps:
    input:
        model_brain_summary="results/tables/model_brain_summary.parquet",
        apa_summary="results/tables/apa_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/score_vs_aps_{measure}.png",
            caption="../report/score_vs_aps.rst",
            category="Alignment Pattern Analysis",
            subcategory="{measure}",
            labels={"figure": "score_vs_aps", "measure": "{measure}"},
        ),
        pdf="results/figures/score_vs_aps_{measure}.pdf",
    params:
        kind="score_vs_aps",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/score_vs_aps_{measure}.log",
    benchmark:
        "results/benchmarks/figures/score_vs_aps_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_score_vs_aps"),
        runtime=runtime("figure_score_vs_aps"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule figure_confusion:
    input:
        apa_confusion="results/tables/apa_confusion.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/confusion_{measure}.png",
            caption="../report/confusion.rst",
            category="Alignment Pattern Analysis",
            subcategory="{measure}",
            labels={"figure": "confusion", "measure": "{measure}"},
        ),
        pdf="results/figures/confusion_{measure}.pdf",
    params:
        kind="confusion",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/confusion_{measure}.log",
    benchmark:
        "results/benchmarks/figures/confusion_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_confusion"),
        runtime=runtime("figure_confusion"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule figure_roi_map:
    input:
        apa_summary="results/tables/apa_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/roi_map_{measure}.png",
            caption="../report/roi_map.rst",
            category="Maps",
            subcategory="{measure}",
            labels={"figure": "roi_map", "measure": "{measure}"},
        ),
        pdf="results/figures/roi_map_{measure}.pdf",
    params:
        kind="roi_map",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/roi_map_{measure}.log",
    benchmark:
        "results/benchmarks/figures/roi_map_{measure}.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_roi_map"),
        runtime=runtime("figure_roi_map"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule figure_trained_vs_untrained:
    input:
        apa_summary="results/tables/apa_summary.parquet",
        lib=FIGURE_LIB,
    output:
        png=report(
            "results/figures/trained_vs_untrained.png",
            caption="../report/trained_vs_untrained.rst",
            category="Alignment Pattern Analysis",
            subcategory="all measures",
            labels={"figure": "trained_vs_untrained", "measure": "all"},
        ),
        pdf="results/figures/trained_vs_untrained.pdf",
    params:
        kind="trained_vs_untrained",
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/trained_vs_untrained.log",
    benchmark:
        "results/benchmarks/figures/trained_vs_untrained.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("figure_trained_vs_untrained"),
        runtime=runtime("figure_trained_vs_untrained"),
    conda:
        ENV
    script:
        "../scripts/figure_render.py"


rule run_info:
    input:
        lib=lib("figures/run_info.py"),
    output:
        html=report(
            "results/report/run_info.html",
            caption="../report/run_info.rst",
            category="Run",
            labels={"page": "config and software versions"},
        ),
    params:
        cfg=CFG,
    log:
        "results/logs/figures/run_info.log",
    benchmark:
        "results/benchmarks/figures/run_info.tsv"
    group:
        "figures"
    threads: 1
    resources:
        mem_mb=mem_mb("run_info"),
        runtime=runtime("run_info"),
    conda:
        ENV
    script:
        "../scripts/figure_run_info.py"
