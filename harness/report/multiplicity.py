"""Many tests at once: Holm over a family fixed in advance, Benjamini-Hochberg for the exploratory rest,
equivalence verdicts (TOST), and how p values are shown.

The report's families are fixed by the design, not by what came out (see :mod:`harness.report.contrasts`):
the primary family (the 2x2 grid's two main effects and interaction) and the fusion family (each fused
pair against its own unimodal baselines), each with its own Holm adjustment; every other comparison is
exploratory and gets a Benjamini-Hochberg (false-discovery-rate) adjusted p value, labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
"""Level of the tests behind the verdicts."""

EQUIVALENCE_MARGIN = 0.02
"""Default equivalence margin (weighted F1): a contrast inside +/- this is practically nil."""

VERDICTS = ("equivalent", "different", "inconclusive")


def _checked(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p values must lie in [0, 1], got {p.tolist()}")
    return p


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error rate): the i-th smallest of m p values times (m - i),
    made monotone and capped at 1; equal to ``statsmodels``' ``multipletests(method="holm")`` (a test checks),
    computed here because that function runs a full ``gc.collect()`` on every Holm call (0.3-0.5 s in a
    report process, and a report makes several calls per group).

    Args:
        pvalues: The p values of one family of tests.

    Returns:
        The adjusted p values, in the input order (each >= its raw p value, at most 1).

    Raises:
        ValueError: A p value is NaN or outside [0, 1].
    """
    p = _checked(pvalues)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (false discovery rate), by ``statsmodels``.

    Raises:
        ValueError: A p value is NaN or outside [0, 1].
    """
    return _adjusted(pvalues, "fdr_bh")


def _adjusted(pvalues: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """``statsmodels``' ``multipletests`` adjustment ``method`` of checked p values (none: none)."""
    p = _checked(pvalues)
    if p.size == 0:
        return p
    return np.asarray(multipletests(p, method=method)[1], dtype=float)


def verdict(holm_p: float, equivalence_holm_p: float, alpha: float = ALPHA) -> str:
    """``"equivalent"`` when the (Holm-adjusted) TOST rejects "|contrast| >= margin"; else ``"different"``
    when the (Holm-adjusted) test of "contrast = 0" rejects; else ``"inconclusive"``.

    Both can reject when the interval excludes 0 and lies inside the margin: the contrast is then non-zero
    but smaller than the margin, which by the margin's definition is practically nil, so "equivalent" wins.
    """
    if equivalence_holm_p < alpha:
        return "equivalent"
    if holm_p < alpha:
        return "different"
    return "inconclusive"


def format_p(p: float) -> str:
    """A p value for display (the CSVs keep full precision): ``n/a``, ``<0.001``, else 3 decimals."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{min(p, 1.0):.3f}"
