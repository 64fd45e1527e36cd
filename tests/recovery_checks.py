"""The SPEC.md §5 recovery quantities, computed from the tables of a workflow run.

Shared by ``tests/test_recovery.py`` (which asserts the floors) and by the report of measured
values: ``python -m tests.recovery_checks RUN_DIR`` prints every quantity of a run directory
(one that holds ``results/tables/{apa_summary,apa_confusion,brain_brain,model_brain}.parquet``
and ``results/data/synthetic_bmd/ground_truth.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from alignpatterns.io import read_table
from alignpatterns.patterns.apa import selected_layers

REPO = Path(__file__).resolve().parents[1]
MEASURES = ["rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased",
            "lp-ridge-pearson"]
#: measures on which SPEC.md §5 asserts oracle recovery
ORACLE_MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]
#: measures with a noiseless ground-truth pattern in ``ground_truth.json``
PATTERN_MEASURES = ["rsa-crossnobis-spearman", "rsa-correlation-spearman",
                    "cka-linear-debiased", "lp-ridge-pearson"]
#: timm-default near-identity initialisations among the default candidates (SPEC.md §5)
NEAR_IDENTITY = ["convnext_atto", "vit_tiny_patch16_224", "mobilenetv3_small_100"]


class Run:
    """Lazily read tables of one workflow run directory."""

    def __init__(self, wd: Path):
        self.wd = Path(wd)
        self.truth = json.loads((self.wd / "results/data/synthetic_bmd/ground_truth.json")
                                .read_text())
        self._tables: dict[str, pd.DataFrame] = {}

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = read_table(self.wd / f"results/tables/{name}.parquet")
        return self._tables[name]


def _cells(run: Run, measure: str, variant: str) -> pd.DataFrame:
    """The primary cells of ``measure`` × ``variant``: layers selected by train score."""
    s = run.table("apa_summary")
    primary = s["selection"] == "score" if "selection" in s else True
    return s[(s["measure"] == measure) & (s["variant"] == variant) & primary]


def brain_aps(run: Run, measure: str, variant: str) -> float:
    """Mean over ROIs of the brain-baseline APS (``aps_mean`` of candidate ``brain``)."""
    return float(_cells(run, measure, variant).query("candidate == 'brain'")["aps_mean"].mean())


def identification(run: Run, measure: str, variant: str, candidate: str = "brain"
                   ) -> tuple[float, float, float]:
    """(top-1 accuracy, chance, permutation p) of ROI identification by ``candidate``."""
    c = run.table("apa_confusion")
    row = c[(c["measure"] == measure) & (c["variant"] == variant)
            & (c["candidate"] == candidate)].iloc[0]
    return float(row["top1_accuracy"]), float(row["chance"]), float(row["top1_p"])


def group_pattern_corr(run: Run, measure: str) -> float:
    """Pearson r between the group brain–brain ROI × ROI matrix on test (mean over ordered
    subject pairs) and the noiseless ground-truth pattern."""
    bb = run.table("brain_brain")
    bb = bb[(bb["measure"] == measure) & (bb["split"] == "test")]
    rois = run.truth["rois"]
    est = bb.groupby(["source_roi", "target_roi"])["score"].mean().unstack().loc[rois, rois]
    expected = np.array(run.truth["expected_pattern"][measure])
    return float(np.corrcoef(est.to_numpy().ravel(), expected.ravel())[0, 1])


def oracle_top(run: Run, measure: str, variant: str = "offdiag") -> float:
    """Share of ROIs where the oracle has the top mean APS among all model candidates."""
    cells = _cells(run, measure, variant).query("candidate != 'brain'")
    top = [cells[cells["roi"] == r].sort_values("aps_mean").iloc[-1]["candidate"] == "oracle"
           for r in run.truth["rois"]]
    return float(np.mean(top))


def oracle_layer_within_one(run: Run, measure: str) -> float:
    """Share of ROIs whose oracle layer ℓ* (leave-subject-out selection on train) is within ±1
    generator layer of the true driving layer for at least half the subjects."""
    truth = run.truth
    mb = run.table("model_brain")
    sel = selected_layers(mb[(mb["measure"] == measure) & (mb["model"] == "oracle")],
                          truth["subjects"], truth["rois"])
    layers = truth["generator_layers"]
    hits = [np.mean(np.abs(sel[sel["roi"] == r]["layer"].map(layers.index).to_numpy()
                           - truth["roi_true_layer"][r]) <= 1) >= 0.5 for r in truth["rois"]]
    return float(np.mean(hits))


def deepest_third(truth: dict) -> list[str]:
    """The ⌈n/3⌉ ROIs with the deepest expected driving depth Σ_k w_k·k over the generator's
    driving levels (``roi_layer_weights``)."""
    depth = {r: float(np.dot(w, np.arange(len(w))))
             for r, w in truth["roi_layer_weights"].items()}
    n = -(-len(depth) // 3)
    return sorted(depth, key=lambda r: (-depth[r], r))[:n]


def generator_arch_margins(run: Run, measure: str, variant: str = "offdiag"
                           ) -> dict[str, float]:
    """Mean APS over the deepest third of ROIs of the generator-architecture candidate (the
    re-seeded generator, named as ``ground_truth['generator']``) minus that of each
    near-identity-init candidate present in the run."""
    cells = _cells(run, measure, variant)
    deep = cells[cells["roi"].isin(deepest_third(run.truth))]
    mean = deep.groupby("candidate")["aps_mean"].mean()
    gen = run.truth["generator"]
    return {c: float(mean[gen] - mean[c]) for c in NEAR_IDENTITY if c in mean.index}


def oracle_passes(run: Run, measure: str, variant: str = "offdiag") -> tuple[int, int]:
    """(ROIs the oracle passes, most ROIs passed by any other model candidate)."""
    cells = _cells(run, measure, variant).query("candidate != 'brain'")
    n = cells.groupby("candidate")["passes"].sum()
    return int(n["oracle"]), int(n.drop("oracle").max())


def oracle_expected_agreement(run: Run, measure: str, variant: str = "offdiag",
                              point: bool = False) -> tuple[float, int, int]:
    """(share of ROIs where the oracle's verdict equals the noise-free ``expected_pass``, ROIs
    expected to pass, of those the ROIs it passes); with ``point``, against the verdict of the
    noise-free point values without the subjects' interval (``passes_point``)."""
    cells = _cells(run, measure, variant).query("candidate == 'oracle'").set_index("roi")
    expected = pd.Series(run.truth["expected_pass"][measure])
    if point:
        expected = pd.Series({r: v["passes_point"]
                              for r, v in run.truth["expected_oracle"][measure].items()})
    got = cells["passes"].reindex(expected.index).fillna(False).astype(bool)
    return (float((got == expected).mean()), int(expected.sum()),
            int((got & expected).sum()))


CONTROL_MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]
#: fresh shuffles of the oracle's features in :func:`shuffle_calibration`
N_CALIBRATION_SHUFFLES = 16


def _oracle_driver_features(run: Run) -> tuple[dict, int]:
    """The oracle's features of the layers that drive some ROI, as {layer: (train, test)}, and
    the number of train stimuli."""
    from alignpatterns import pipeline

    truth = run.truth
    oracle, _ = pipeline.load_features(run.wd / "results/features/oracle.npz")
    keep = sorted({truth["generator_layers"][i] for i in truth["roi_true_layer"].values()})
    return {k: oracle[k] for k in keep}, len(next(iter(oracle.values()))[0])


def _shuffled(feats: dict, n_train: int, order: np.ndarray) -> dict:
    """``feats`` with the stimuli (train and test together) reordered by ``order``."""
    out = {}
    for name, (tr, te) in feats.items():
        Z = np.concatenate([tr, te])[order]
        out[name] = (Z[:n_train], Z[n_train:])
    return out


def score_controls(run: Run, config: Path, candidates: dict[str, dict]) -> pd.DataFrame:
    """APA summary rows (all variants and selections of ``CONTROL_MEASURES``) of feature sets
    scored exactly like a model: layer selection on train, the config's stimulus
    permutations, BH within measure × variant over these candidates' ROIs.

    Parameters
    ----------
    candidates : dict of str to dict
        Candidate name → {layer: (train features (n_train, p), test features (n_test, p))}.
    """
    import yaml

    from alignpatterns import pipeline
    from alignpatterns.config import resolve_config
    from alignpatterns.data.prepared import load_subject
    from alignpatterns.patterns.alignment import model_brain_scores
    from alignpatterns.patterns.apa import run_apa
    from alignpatterns.patterns.streams import stimulus_permutations

    wd = run.wd
    cfg = resolve_config(yaml.safe_load(Path(config).read_text()), repo=REPO)
    lp = pipeline._lp_options(cfg, wd / "results/data/dataset.json")
    subjects, rois = cfg["subjects"], cfg["rois"]
    n_perm = cfg["apa"]["n_permutations"]
    sds = [load_subject(wd / f"results/brain/sub-{s}.npz") for s in subjects]
    rows, nulls = [], {}
    for cand, feats in candidates.items():
        per_sub = []
        for sd in sds:
            perms = {m: stimulus_permutations(cfg["seed"], m, cand, n_perm, len(sd.test_ids))
                     for m in CONTROL_MEASURES}
            r, n = model_brain_scores(feats, sd, rois, CONTROL_MEASURES, lp, perms)
            rows += [{**x, "model": cand, "weights": "control"} for x in r]
            per_sub.append(n)
        nulls[cand] = {m: np.stack([n[m] for n in per_sub], axis=2) for m in CONTROL_MEASURES}
    mb = pd.DataFrame(rows)
    bb = read_table(wd / "results/tables/brain_brain.parquet")
    ceilings = read_table(wd / "results/tables/ceilings.parquet")
    out = []
    for m in CONTROL_MEASURES:
        _, summary = run_apa(bb[bb["measure"] == m], mb[mb["measure"] == m], subjects, rois, m,
                             variants=cfg["apa"]["variants"], matches=["pearson"],
                             margin=cfg["apa"]["margin"], ceilings=ceilings,
                             min_ceiling=cfg["apa"]["min_ceiling"],
                             nulls={c: nulls[c][m] for c in nulls},
                             selections=cfg["apa"].get("selection", ["score"]))
        out.append(summary[summary["candidate"] != "brain"])
    return pd.concat(out, ignore_index=True)


def negative_controls(run: Run, config: Path) -> pd.DataFrame:
    """APA verdicts of two candidates that carry no stimulus information about the brain:
    Gaussian features, and the oracle's own features with the stimuli shuffled (one fixed
    permutation of all stimuli, so train selection and test scoring see the same mismatch),
    scored by :func:`score_controls`."""
    feats, n_train = _oracle_driver_features(run)
    rng = np.random.default_rng(2024)
    n_all = n_train + len(next(iter(feats.values()))[1])
    shuffle = rng.permutation(n_all)
    gaussian = {}
    for name, (tr, _) in feats.items():
        G = rng.standard_normal((n_all, tr.shape[1]))
        gaussian[name] = (G[:n_train], G[n_train:])
    return score_controls(run, config, {"gaussian": gaussian,
                                        "permuted-oracle": _shuffled(feats, n_train, shuffle)})


def shuffle_calibration(run: Run, config: Path, n_shuffles: int = N_CALIBRATION_SHUFFLES
                        ) -> pd.DataFrame:
    """:func:`score_controls` rows of ``n_shuffles`` independent stimulus shuffles of the
    oracle's features (candidates ``shuffle0``, ``shuffle1``, …; fixed seeds).

    Each shuffle is a model with no stimulus-locked signal, so each cell's stimulus-permutation
    p-value is uniform over shuffles and the share of cells with p < α averages α, however
    strongly the ROIs of one shuffle are correlated (one shuffle's chance alignment repeats
    over ROIs that share a latent, variants and selections, so one shuffle alone says little).
    """
    feats, n_train = _oracle_driver_features(run)
    n_all = n_train + len(next(iter(feats.values()))[1])
    cands = {f"shuffle{k}": _shuffled(feats, n_train,
                                      np.random.default_rng([2025, k]).permutation(n_all))
             for k in range(n_shuffles)}
    return score_controls(run, config, cands)


def report(run: Run) -> list[str]:
    """Every recovery quantity of ``run``, one line each."""
    out = []
    for m in MEASURES:
        for v in ("offdiag", "normalized"):
            out.append(f"{m} {v}: brain APS {brain_aps(run, m, v):.3f}")
            acc, chance, p = identification(run, m, v)
            out.append(f"{m} {v}: ROI identification {acc:.2f} (chance {chance:.2f}, p {p:.4f})")
    for m in PATTERN_MEASURES:
        if m not in run.truth["expected_pattern"]:  # a dataset older than its truth key
            out.append(f"{m}: no noise-free pattern in this ground_truth.json")
            continue
        out.append(f"{m}: corr(group pattern, truth) {group_pattern_corr(run, m):.3f}")
    for m in ORACLE_MEASURES:
        out.append(f"{m}: oracle top {oracle_top(run, m):.0%}, ℓ* within ±1 "
                   f"{oracle_layer_within_one(run, m):.0%}, passes {oracle_passes(run, m)}")
        if m in run.truth["expected_pass"]:
            agree, n_exp, n_hit = oracle_expected_agreement(run, m)
            out.append(f"{m}: oracle verdict = expected_pass in {agree:.0%} of ROIs; expected "
                       f"to pass {n_exp}, of which passed {n_hit}")
            if "passes_point" in next(iter(run.truth["expected_oracle"][m].values())):
                agree, n_exp, n_hit = oracle_expected_agreement(run, m, point=True)
                out.append(f"{m}: oracle verdict = point verdict (no interval) in "
                           f"{agree:.0%} of ROIs; expected to pass {n_exp}, of which passed "
                           f"{n_hit}")
        margins = {c: round(d, 3) for c, d in generator_arch_margins(run, m).items()}
        out.append(f"{m}: generator-architecture margin on {deepest_third(run.truth)} {margins}")
    return out


if __name__ == "__main__":
    wd = Path(sys.argv[1])
    print("\n".join(report(Run(wd))))
    if len(sys.argv) > 2 and sys.argv[2] == "--controls":
        c = negative_controls(Run(wd), wd / "config.yaml")
        print("negative controls: cells", len(c), "passes", int(c["passes"].sum()),
              "share q_stimulus >= 0.05", round(float((c["q_stimulus"] >= 0.05).mean()), 3))
        c = shuffle_calibration(Run(wd), wd / "config.yaml")
        by_shuffle = c.groupby("candidate")["p_stimulus"]
        print(f"shuffle calibration: {c['candidate'].nunique()} shuffles, cells", len(c),
              "passes", int(c["passes"].sum()), "share p < 0.05",
              round(float((c["p_stimulus"] < 0.05).mean()), 4), "share p < 0.01",
              round(float((c["p_stimulus"] < 0.01).mean()), 4), "shuffles with a cell p < 0.05",
              int(by_shuffle.min().lt(0.05).sum()))
