# Figures: read tables only; one job per figure kind, drawing every measure (a figure takes about
# a second; the job's imports take longer). Every figure rule lists the
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
        **figure_outputs("conventional", "../report/conventional.rst", "Conventional alignment"),
    params:
        kind="conventional",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/conventional.log",
    benchmark:
        "results/benchmarks/figures/conventional.tsv"
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
        **figure_outputs("layers", "../report/layers.rst", "Conventional alignment"),
    params:
        kind="layers",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/layers.log",
    benchmark:
        "results/benchmarks/figures/layers.tsv"
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
        **figure_outputs("brain_patterns", "../report/brain_patterns.rst", "Brain alignment patterns"),
    params:
        kind="brain_patterns",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/brain_patterns.log",
    benchmark:
        "results/benchmarks/figures/brain_patterns.tsv"
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
        apa_nulls="results/tables/apa_nulls.parquet",
        lib=FIGURE_LIB,
    output:
        **figure_outputs("aps", "../report/aps.rst", "Alignment Pattern Analysis"),
    params:
        kind="aps",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/aps.log",
    benchmark:
        "results/benchmarks/figures/aps.tsv"
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
        **figure_outputs("profiles", "../report/profiles.rst", "Alignment Pattern Analysis"),
    params:
        kind="profiles",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/profiles.log",
    benchmark:
        "results/benchmarks/figures/profiles.tsv"
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
        **figure_outputs("score_vs_aps", "../report/score_vs_aps.rst", "Alignment Pattern Analysis"),
    params:
        kind="score_vs_aps",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/score_vs_aps.log",
    benchmark:
        "results/benchmarks/figures/score_vs_aps.tsv"
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
        **figure_outputs("confusion", "../report/confusion.rst", "Alignment Pattern Analysis"),
    params:
        kind="confusion",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/confusion.log",
    benchmark:
        "results/benchmarks/figures/confusion.tsv"
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
        **figure_outputs("roi_map", "../report/roi_map.rst", "Maps"),
    params:
        kind="roi_map",
        measures=MEASURES,
        cfg=cfg_for("rois", "apa", "models", "measures"),
        streams=STREAMS,
    log:
        "results/logs/figures/roi_map.log",
    benchmark:
        "results/benchmarks/figures/roi_map.tsv"
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
