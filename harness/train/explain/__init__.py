"""Explainability that compares across small and large models (issue 19).

* ``sample``: one explanation set per fold, the same for every pair (class-stratified, fixed seed).
* ``units``: common units (100 ms waveform bins, transcript words) and in-distribution replacements.
* ``attribute``: Integrated Gradients with a completeness check; the randomisation sanity check.
* ``utterance``: one utterance explained end to end (or at head level), context in place.
* ``reliance``: modality reliance by permutation replacement.
* ``fold``: a fold's explanation under its time budget, and its per-utterance rows.
"""

from harness.train.explain.fold import COLUMNS, ExplainBudget, FoldExplanation, explain_fold
from harness.train.explain.sample import explanation_set, permutation_partners

__all__ = ["COLUMNS", "ExplainBudget", "FoldExplanation", "explain_fold", "explanation_set", "permutation_partners"]
