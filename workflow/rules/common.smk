# Helper functions and derived settings. Every `def` lives here (snakemake --lint).
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.current_basedir).parents[1]
sys.path.insert(0, str(REPO / "src"))

from alignpatterns.config import resolve_config, schema_error  # noqa: E402

# before any job: an invalid config stops here with the key path in the message
try:
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError as err:
    raise schema_error(err) from None

CFG = resolve_config(config, repo=REPO)
DATA_ROOT = CFG["dataset"]["root"]
SUBJECTS = CFG["subjects"]
ROIS = CFG["rois"]
MODELS = [m["name"] for m in CFG["models"]]
MEASURES = CFG["measures"]
ENV = "../../envs/alignpatterns.yaml"
# Per-measure figure kinds (alignpatterns.figures.render.PER_MEASURE; kept here so that the DAG
# is built without importing matplotlib).
FIGURE_KINDS = [
    "conventional",
    "layers",
    "brain_patterns",
    "aps",
    "profiles",
    "score_vs_aps",
    "confusion",
    "roi_map",
]


wildcard_constraints:
    subject=r"[0-9]+",
    model=r"[A-Za-z0-9_.\-]+",
    measure=r"[a-z0-9\-]+",


def lib(*names):
    """Library source files a rule runs, so that editing them reruns the rule."""
    files = []
    for name in names:
        p = REPO / "src" / "alignpatterns" / name
        files += sorted(str(f) for f in p.rglob("*.py")) if p.is_dir() else [str(p)]
    return files


def dataset_input(wildcards=None):
    """The dataset root (a rule output when the workflow synthesizes it)."""
    return DATA_ROOT


def subject_files(wildcards=None):
    return expand("results/brain/sub-{subject}.npz", subject=SUBJECTS)


# LP's source side (scaling, PCA per fold) of every model layer once, for all subjects: with a
# common reduction and our protocol (the paper's fits its own per target ROI)
DECOMPOSE = (any(m.startswith("lp-") for m in MEASURES)
             and CFG["lp"].get("n_components") is not None
             and CFG["lp"].get("protocol", "default") == "default")


def decomposed_input(wildcards):
    """The model's LP decompositions when the workflow makes them, else nothing."""
    return f"results/features/decomposed/{wildcards.model}.npz" if DECOMPOSE else []


def model_brain_files(wildcards=None):
    return expand(
        "results/alignment/model_brain/{model}/sub-{subject}.parquet",
        model=MODELS,
        subject=SUBJECTS,
    )


def model_brain_null_files(wildcards=None):
    return expand(
        "results/alignment/model_brain_null/{model}/sub-{subject}.npz",
        model=MODELS,
        subject=SUBJECTS,
    )


def brain_brain_boot_files(wildcards):
    """One measure's brain–brain test scores under the stimulus-bootstrap draws."""
    return expand(
        "results/alignment/brain_brain_boot/{measure}/sub-{subject}.npz",
        measure=wildcards.measure,
        subject=SUBJECTS,
    )


def brain_brain_files(wildcards=None):
    return expand(
        "results/alignment/brain_brain/{measure}/sub-{subject}.parquet",
        measure=MEASURES,
        subject=SUBJECTS,
    )


def brain_avg_files(wildcards=None):
    """Per measure x target subject stand-in scores; none when no k >= 2 of apa.brain_avg_k
    can be scored (too few subjects, or no vertex correspondence: apa_brain_avg then reports
    the reason in its rows)."""
    from alignpatterns.data.dataset import has_vertex_correspondence

    # k stand-ins need k + 3 subjects (patterns.brain_avg.min_subjects, not imported here:
    # it pulls in the measures)
    ks = [k for k in CFG["apa"]["brain_avg_k"] if k >= 2]
    if not has_vertex_correspondence(CFG["dataset"]) or not any(
        len(SUBJECTS) >= k + 3 for k in ks
    ):
        return []
    return expand(
        "results/alignment/brain_avg/{measure}/sub-{subject}.parquet",
        measure=MEASURES,
        subject=SUBJECTS,
    )


def figure_outputs(kind, caption, category):
    """Named outputs of a per-measure figure rule: ``png_<i>`` (in the report, under the
    measure's subcategory) and ``pdf_<i>`` for the i-th measure of MEASURES."""
    out = {}
    for i, measure in enumerate(MEASURES):
        out[f"png_{i}"] = report(
            f"results/figures/{kind}_{measure}.png",
            caption=caption,
            category=category,
            subcategory=measure,
            labels={"figure": kind, "measure": measure},
        )
        out[f"pdf_{i}"] = f"results/figures/{kind}_{measure}.pdf"
    return out


def figure_files(kind):
    return expand(
        "results/figures/{kind}_{measure}.{ext}",
        kind=kind,
        measure=MEASURES,
        ext=["png", "pdf"],
    )


def final_outputs():
    tables = [
        "model_brain",
        "model_brain_summary",
        "brain_brain",
        "brain_within",
        "brain_within_summary",
        "ceilings",
        "apa",
        "apa_summary",
        "apa_nulls",
        "apa_confusion",
        "apa_whole_model",
        "apa_brain_avg",
    ]
    if CFG["dataset"].get("synthesize") and "oracle" in MODELS:
        tables.append("synth_layer_cka")
    return (
        expand("results/tables/{table}.parquet", table=tables)
        + ["results/data/check_data.parquet"]
        + [f for kind in FIGURE_KINDS for f in figure_files(kind)]
        + expand("results/figures/trained_vs_untrained.{ext}", ext=["png", "pdf"])
        + ["results/report/run_info.html"]
    )


def cfg_for(*keys):
    """The resolved config restricted to ``keys``: a rule's params change (and the rule reruns)
    only when a setting it uses changes."""
    return {k: CFG[k] for k in keys if k in CFG}


def model_cfg(wildcards):
    """Config for one model's extraction: its own entry only, not the whole model list."""
    out = cfg_for("device", "features", "seed")
    out["models"] = [m for m in CFG["models"] if m["name"] == wildcards.model]
    return out


def stimulus_bootstrap_draws():
    """Draws of the subject x stimulus bootstrap of Delta: apa.n_bootstrap, but none with
    apa.partners (its resamples need every ordered pair; the apa job says so)."""
    return 0 if CFG["apa"].get("partners") else CFG["apa"]["n_bootstrap"]


def model_brain_cfg(wildcards):
    """Config for one model x subject alignment job."""
    out = cfg_for("rois", "measures", "lp", "seed")
    out["models"] = [m for m in CFG["models"] if m["name"] == wildcards.model]
    out["apa"] = {"n_permutations": CFG["apa"]["n_permutations"],
                  "n_bootstrap": stimulus_bootstrap_draws()}
    return out


def brain_brain_cfg(wildcards):
    """Config for one brain x brain job (the bootstrap draws need the seed and their number)."""
    out = cfg_for("rois", "lp", "seed")
    out["apa"] = {"n_bootstrap": stimulus_bootstrap_draws()}
    return out


def apa_cfg():
    """Config for the apa jobs; with ``apa.adjacency: atlas`` also where the atlas lies (its
    adjacency table, when it ships one, feeds the anatomical null)."""
    out = cfg_for("subjects", "rois", "apa", "seed")
    if CFG["apa"].get("adjacency", "atlas") == "atlas":
        out["dataset"] = {k: v for k, v in CFG["dataset"].items()
                          if k in ("format", "root", "space", "version", "atlas", "labels",
                                   "betas")}
    return out


def adjacency_input(wildcards=None):
    """A user's adjacency table as an input (a change reruns APA); the atlas's own table comes
    with the dataset."""
    spec = CFG["apa"].get("adjacency", "atlas")
    return [] if spec in (None, "atlas") else [spec]


def brain_avg_cfg(wildcards):
    """Config for one brain_avg scoring job: only the settings the scores depend on (not the
    APS variants, so that choosing other variants does not refit)."""
    out = cfg_for("rois", "lp", "seed", "subjects", "min_vertices")
    out["dataset"] = {k: v for k, v in CFG["dataset"].items()
                      if k in ("format", "space", "version", "betas")}
    out["apa"] = {
        k: CFG["apa"][k] for k in ("brain_avg_k", "brain_avg_max_sets", "brain_avg_vertices")
    }
    return out


def ceilings_cfg(wildcards):
    """Config for the ceilings job: the measures, and what ``ceiling_loo_data`` depends on
    (LP settings, vertex rule, whether the space has vertex correspondence)."""
    out = cfg_for("rois", "measures", "lp", "min_vertices")
    out["dataset"] = {k: v for k, v in CFG["dataset"].items()
                      if k in ("format", "space", "version", "betas")}
    out["apa"] = {"brain_avg_vertices": CFG["apa"]["brain_avg_vertices"]}
    return out


# --- resources (alignpatterns.resources): sized from the data, attempt-scaled for retries ----------
from alignpatterns import resources as _resources  # noqa: E402

GPU = 1 if CFG["device"] == "cuda" else 0


def mem_mb(rule):
    """``mem_mb`` of a rule's jobs: from the input files' shapes when they exist, else from the
    config; memory-bound rules ask ``attempt`` times more on each retry."""

    def size(wildcards, input, attempt):
        return _resources.mem_mb(rule, CFG, input, attempt)

    return size


def runtime(rule):
    """``runtime`` (minutes) of a rule's jobs, planned from the config's sizes, × attempt."""

    def size(wildcards, attempt):
        return _resources.runtime(rule, CFG, None, attempt)

    return size
