"""Statistics for comparing classifiers on per-utterance predictions of the six benchmark emotions: the
stable import path (``harness.report.stats.primary_difference``, ...), re-exporting the modules that do
each job.

* :mod:`harness.report.predictions`: the predictions table (schema, checks, alignment of models on their
  common utterances) and :func:`summarize` (weighted/macro F1, UA, WA, per-emotion F1 per pair).
* :mod:`harness.report.inference`: speaker-level inference: :func:`primary_difference` (a minus b, per-session
  t interval and t test of the same statistic, conditional on these training sets, and beside them the
  overlap-aware interval and p: ``overlap_ci_low``, ``overlap_ci_high``, ``overlap_p_value``, Nadeau-Bengio
  corrected t), :func:`session_contrast` (any weighted contrast of models, each over its own seeds, a
  model's own level included), :func:`per_session_means` (the one level estimator of every table and plot)
  and :func:`t_interval`.
* :mod:`harness.report.bootstrap`: the dialog bootstrap (:func:`paired_bootstrap`), an interval
  conditional on the test speakers, kept as a secondary interval and for a single test session.
* :mod:`harness.report.multiplicity`: Holm over a pre-specified family, Benjamini-Hochberg, TOST verdicts,
  p values for display.
* :mod:`harness.report.simulation`: the generator that checks the intervals' coverage against a known truth.

Self-contained: these modules import only numpy, pandas, scipy, statsmodels and scikit-learn (and each
other), nothing else from ``harness``, so they run on a machine without the training stack.
"""

from __future__ import annotations

from harness.report.bootstrap import BootstrapResult, bootstrap_p, contrast_bootstrap, paired_bootstrap
from harness.report.inference import (
    ONE_SESSION_BOOTSTRAP,
    SESSION_T,
    ContrastResult,
    Interval,
    align_models,
    overlap_factor,
    overlap_summary,
    per_session_contrast,
    per_session_means,
    primary_difference,
    session_contrast,
    t_interval,
    t_summary,
)
from harness.report.multiplicity import (
    ALPHA,
    EQUIVALENCE_MARGIN,
    benjamini_hochberg,
    format_p,
    holm,
    verdict,
)
from harness.report.predictions import (
    EMOTIONS,
    METRICS,
    REQUIRED_COLUMNS,
    STD_CONVENTION,
    Aligned,
    align,
    summarize,
)

__all__ = [
    "ALPHA",
    "EMOTIONS",
    "EQUIVALENCE_MARGIN",
    "METRICS",
    "ONE_SESSION_BOOTSTRAP",
    "REQUIRED_COLUMNS",
    "SESSION_T",
    "STD_CONVENTION",
    "Aligned",
    "BootstrapResult",
    "ContrastResult",
    "Interval",
    "align",
    "align_models",
    "overlap_factor",
    "overlap_summary",
    "per_session_means",
    "benjamini_hochberg",
    "bootstrap_p",
    "contrast_bootstrap",
    "format_p",
    "holm",
    "paired_bootstrap",
    "per_session_contrast",
    "primary_difference",
    "session_contrast",
    "summarize",
    "t_interval",
    "t_summary",
    "verdict",
]
