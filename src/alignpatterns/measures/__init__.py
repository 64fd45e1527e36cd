"""Alignment measures: RDMs and their comparison, linear CKA, ridge, LP, scores, ceilings,
resampling statistics (bootstrap, permutation, FDR).

numpy implementation (float64). Importing this package does not import torch.
Noise ceilings live in :mod:`alignpatterns.measures.ceilings`.
"""

from .cka import cka_from_grams, gram, linear_cka
from .compare import compare_rdms, rank_rdm
from .encoding import lp_oof_predict, lp_predict
from .rdm import permute_rdm, rdm
from .ridge import RidgeCV
from .scores import correlation_score, r2_score
from .stats import (
    bootstrap_compare_rdms,
    bootstrap_indices,
    bootstrap_subjects,
    fdr_bh,
    percentile_interval,
    permutation_compare_rdms,
    permutation_indices,
    permutation_p_value,
)

__all__ = [
    "RidgeCV",
    "bootstrap_compare_rdms",
    "bootstrap_indices",
    "bootstrap_subjects",
    "cka_from_grams",
    "compare_rdms",
    "correlation_score",
    "fdr_bh",
    "gram",
    "linear_cka",
    "lp_oof_predict",
    "lp_predict",
    "percentile_interval",
    "permutation_compare_rdms",
    "permutation_indices",
    "permutation_p_value",
    "permute_rdm",
    "r2_score",
    "rank_rdm",
    "rdm",
]
