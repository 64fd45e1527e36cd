# Stimulus features: frames decoded once per frame policy (shared by every model using it), then
# one extraction job per model.
from alignpatterns.features.registry import model_frame_policies  # noqa: E402

FRAME_POLICY = {m: p.id for m, p in model_frame_policies(CFG).items()}
FRAME_POLICIES = {p.id: p.as_dict() for p in model_frame_policies(CFG).values()}


rule frames:
    input:
        dataset=dataset_input(),
        info="results/data/dataset.json",
        lib=lib("features/frames.py", "features/sources.py", "features/runner.py"),
    output:
        frames="results/features/frames/{policy}.npy",
        meta="results/features/frames/{policy}.json",
    wildcard_constraints:
        policy=r"[0-9a-z.]+",
    params:
        cfg=cfg_for("dataset", "features"),
        policy=lambda w: FRAME_POLICIES[w.policy],
    log:
        "results/logs/frames/{policy}.log",
    benchmark:
        "results/benchmarks/frames/{policy}.tsv"
    threads: 2
    resources:
        mem_mb=mem_mb("frames"),
        runtime=runtime("frames"),
    conda:
        ENV
    script:
        "../scripts/frames.py"


rule extract:
    input:
        frames=lambda w: f"results/features/frames/{FRAME_POLICY[w.model]}.npy",
        frames_meta=lambda w: f"results/features/frames/{FRAME_POLICY[w.model]}.json",
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


rule decompose:
    input:
        features="results/features/{model}.npz",
        info="results/data/dataset.json",
        lib=lib("measures", "patterns"),
    output:
        "results/features/decomposed/{model}.npz",
    params:
        cfg=cfg_for("lp"),
    log:
        "results/logs/decompose/{model}.log",
    benchmark:
        "results/benchmarks/decompose/{model}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb("decompose"),
        runtime=runtime("decompose"),
    conda:
        ENV
    script:
        "../scripts/decompose.py"


if CFG["dataset"].get("synthesize") and "oracle" in MODELS:

    rule synth_layer_cka:
        input:
            dataset=dataset_input(),
            features=expand("results/features/{model}.npz", model=MODELS),
            lib=lib("synth/truth.py", "measures"),
        output:
            "results/tables/synth_layer_cka.parquet",
        params:
            cfg=cfg_for("seed", "dataset", "features", "models"),
        log:
            "results/logs/synth_layer_cka.log",
        benchmark:
            "results/benchmarks/synth_layer_cka.tsv"
        threads: 1
        resources:
            mem_mb=mem_mb("synth_layer_cka"),
            runtime=runtime("synth_layer_cka"),
        conda:
            ENV
        script:
            "../scripts/synth_layer_cka.py"
