"""One utterance explained: per branch, Integrated Gradients over its units with the other branch as
scored, removal curves, the completeness error and the randomisation sanity check.

The explained function is the scored one: the probability of the class the model predicts for the
utterance, with a context model's window in place (the other turns encoded as scored, from cached
inputs, and only the target turn's branches varied). Each branch is explained with the other branch
intact, from a baseline in which every unit of that branch is replaced, so its attributions sum (up to the
completeness error) to the drop when the whole modality is removed: the normaliser of its faithfulness.

Faithfulness per branch, for k in 5, 10, 20 and 50% of its units (at least one unit), each divided by the
whole-modality drop (DeYoung et al. 2020's comprehensiveness and sufficiency, normalised per model):
``comprehensiveness`` (drop with the top-k units removed), ``sufficiency`` (drop with only them kept), the
same for k random units (``*_random``, one draw seeded by the utterance and modality, so the same units
for every pair with the same units), their differences (``*_minus_random``) and the areas over the
perturbation curve: ``aopc_comprehensiveness`` (mean over k of comprehensiveness minus random, higher is
better) and ``aopc_sufficiency`` (lower is better). Where the whole-modality drop is under ``DROP_FLOOR``
the normalised figures are undefined (NaN): the model barely uses that modality for that utterance.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.models.data import PairData
from harness.models.encoders.base import Embedded, Encoded, Encoder
from harness.models.fusion import EmotionModel
from harness.train.batching import to_device
from harness.train.explain.attribute import (
    DROP_FLOOR,
    converged_ig,
    integrated_gradients,
    sanity_rank_corr,
)
from harness.train.explain.sample import EXPLAIN_SEED
from harness.train.explain.units import Units

KS = (5, 10, 20, 50)  # percent of a branch's units


@dataclass
class Explained:
    """What one utterance's explanation produced: (modality, k, metric, value) rows and the branch levels."""

    rows: list[tuple[str, int, str, float]] = field(default_factory=list)
    levels: dict[str, str] = field(default_factory=dict)

    def add(self, modality: str, metric: str, value: float, k: int = 0) -> None:
        self.rows.append((modality, k, metric, float(value)))


class TargetForward:
    """Logits of one target turn from its branches' inputs (a batch of variants of them), the rest of the
    model's input as scored: a context model's other window turns are encoded once, from cached inputs."""

    def __init__(self, model: EmotionModel, data: PairData, row: int, device: torch.device):
        self.model = model
        self.context = model.context
        if self.context is None:
            return
        assert model.dialogs is not None
        windows = model.dialogs.windows(np.array([row]), self.context.past, self.context.future)
        rows, mask = windows.rows[0], windows.mask[0]
        others = np.array([r for r in rows[mask] if r != row], dtype=np.int64)
        with torch.no_grad():
            if len(others):
                batch = to_device(model.collate(data.features, others, context=False), device)
                self.fused_others = model.fuse(model.embed(batch))
            else:
                self.fused_others = torch.zeros(0, 0, device=device)
        where = {int(r): i for i, r in enumerate(others)}
        self.template = torch.tensor([where.get(int(r), -1) if m else 0 for r, m in zip(rows, mask)], device=device)
        self.target_at = torch.as_tensor(rows == row, device=device)
        self.mask = torch.as_tensor(mask, device=device)
        self.same = torch.as_tensor(windows.same_speaker[0], device=device)

    def __call__(self, inputs: dict[str, Embedded]) -> torch.Tensor:
        if self.context is None:
            return self.model.forward_embedded(inputs)
        fused = self.model.fuse(inputs)
        n = fused.shape[0]
        others = self.fused_others.to(fused.dtype).reshape(-1, fused.shape[1])
        index = self.template.expand(n, -1).clone()
        index[:, self.target_at] = len(others) + torch.arange(n, device=fused.device)[:, None]
        plan = {"index": index, "mask": self.mask.expand(n, -1), "same_speaker": self.same.expand(n, -1)}
        return self.model.head(self.context(torch.cat([others, fused]), plan))


@contextmanager
def fixed_encoding(encoder: Encoder, embedded: Embedded) -> Iterator[None]:
    """While a branch is held at its scored input, encode it once: ``encode`` returns that encoding for
    any batch size (an instance attribute shadowing the method; removed afterwards)."""
    with torch.no_grad():
        encoded = encoder.encode(embedded)

    def encode(e: Embedded) -> Encoded:
        n = e.x.shape[0]
        return Encoded(encoded.seq.expand(n, *encoded.seq.shape[1:]), encoded.mask.expand(n, -1))

    encoder.encode = encode  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del encoder.encode


def explain_utterance(
    model: EmotionModel,
    data: PairData,
    row: int,
    units: dict[str, Units],
    device: torch.device,
    steps: int,
    ceiling: int,
    batch: int,
    chunk: int,
) -> Explained:
    """Attributions, faithfulness, completeness and sanity for every branch of one utterance."""
    forward = TargetForward(model, data, row, device)
    scored = {m: u.embed(u.x) for m, u in units.items()}
    with torch.no_grad():
        probs = torch.softmax(forward(scored).float(), -1)[0]
    target = int(probs.argmax())
    out = Explained(levels={m: u.level for m, u in units.items()})
    utterance_id = str(data.manifest.utterance_id.iloc[row])
    for m, branch in units.items():
        if branch.n_units == 0:
            continue
        with ExitStack() as stack:
            for other in units:
                if other != m:
                    stack.enter_context(fixed_encoding(model.branches[other], scored[other]))

            def prob(x: torch.Tensor, m: str = m) -> torch.Tensor:
                n = x.shape[0]
                inputs = {o: _expand(e, n) for o, e in scored.items() if o != m} | {m: units[m].embed(x)}
                return torch.softmax(forward(inputs).float(), -1)[:, target]

            ig = converged_ig(prob, branch.x, branch.baseline, steps, batch, ceiling)
            scores = branch.unit_scores(ig.attributions)
            out.add(m, "completeness_error", ig.error)
            out.add(m, "completeness_over_tolerance", float(not ig.converged))
            out.add(m, "ig_steps", ig.steps)
            out.add(
                m, "sanity_rank_corr", sanity_rank_corr(scores, _attribute(prob, branch, ig.steps, batch), model.head)
            )
            for unit, value in enumerate(scores):
                out.add(m, "attribution", value, k=unit)
            rng = np.random.default_rng([EXPLAIN_SEED, zlib.crc32(f"{utterance_id}/{m}".encode())])
            _removal_curves(out, m, branch, scores, prob, float(probs[target]), rng, chunk)
    return out


def _attribute(prob, branch: Units, steps: int, batch: int):  # noqa: ANN001, ANN202 - a small closure factory
    def attribute() -> np.ndarray:
        return branch.unit_scores(integrated_gradients(prob, branch.x, branch.baseline, steps, batch).attributions)

    return attribute


def _expand(embedded: Embedded, n: int) -> Embedded:
    lengths = None if embedded.lengths is None else embedded.lengths.expand(n)
    return Embedded(
        embedded.x.expand(n, *embedded.x.shape[1:]), embedded.mask.expand(n, -1), embedded.pooled_layers, lengths
    )


def _removal_curves(
    out: Explained,
    modality: str,
    branch: Units,
    scores: np.ndarray,
    prob,  # noqa: ANN001 - [n, T, F] -> [n] target probabilities
    p: float,
    rng: np.random.Generator,
    chunk: int,
) -> None:
    n_units = branch.n_units
    ranked = np.argsort(-scores, kind="stable")
    shuffled = rng.permutation(n_units)
    keeps = [np.zeros(n_units, dtype=bool)]  # first: every unit removed
    for k in KS:
        count = max(1, int(np.ceil(k / 100 * n_units)))
        for chosen in (ranked[:count], shuffled[:count]):
            selected = np.zeros(n_units, dtype=bool)
            selected[chosen] = True
            keeps += [~selected, selected]  # removed (comprehensiveness), only kept (sufficiency)
    inputs = branch.with_kept(np.stack(keeps))
    with torch.no_grad():
        values = torch.cat([prob(inputs[i : i + chunk]) for i in range(0, len(inputs), chunk)]).cpu().numpy()
    drops = p - values.astype(np.float64)
    whole = drops[0]
    out.add(modality, "whole_modality_drop", whole)
    norm = whole if whole >= DROP_FLOOR else float("nan")
    comp_gap, suff_gap = [], []
    for i, k in enumerate(KS):
        comp, suff, comp_random, suff_random = drops[1 + 4 * i : 5 + 4 * i] / norm
        out.add(modality, "comprehensiveness", comp, k)
        out.add(modality, "sufficiency", suff, k)
        out.add(modality, "comprehensiveness_random", comp_random, k)
        out.add(modality, "sufficiency_random", suff_random, k)
        out.add(modality, "comprehensiveness_minus_random", comp - comp_random, k)
        out.add(modality, "sufficiency_minus_random", suff - suff_random, k)
        comp_gap.append(comp - comp_random)
        suff_gap.append(suff - suff_random)
    out.add(modality, "aopc_comprehensiveness", float(np.mean(comp_gap)))
    out.add(modality, "aopc_sufficiency", float(np.mean(suff_gap)))
