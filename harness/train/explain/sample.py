"""Which utterances are explained, and with which partners: chosen from the fold's data and a fixed seed,
never from the pair, its seed or its compute, so that every pair of a fold explains the same utterances.

``explanation_set``: a class-stratified sample of a fold's test utterances. Its seed is ``EXPLAIN_SEED``
mixed with a hash of the fold's sorted utterance ids, and classes and utterances are visited in sorted
order, so the set depends only on which utterances (and labels) the fold tests: the same for every pair,
every seed, any row order of the manifest. Each class present gets a share proportional to its count
(largest remainders), at least one utterance while the set has room for every class.

``permutation_partners``: for modality reliance, each test utterance's branch input is replaced by that of
another utterance of the same fold (a random cyclic derangement, same seed rule), so the replaced input is
a real utterance the model could have been given, not an all-zero branch it never saw.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

EXPLAIN_SEED = 20_181  # fixed: the explanation set is part of the protocol, not of a trial


def _rng(utterance_ids: Sequence[str], seed: int) -> np.random.Generator:
    digest = zlib.crc32("\n".join(sorted(utterance_ids)).encode())
    return np.random.default_rng([seed, digest])


def stratified_counts(counts: dict, n: int) -> dict:
    """How many of each class a sample of ``n`` takes: proportional (largest remainders), at least one of
    each class while ``n`` allows, never more than a class has."""
    total = sum(counts.values())
    n = min(n, total)
    classes = sorted(c for c, k in counts.items() if k > 0)
    floor = 1 if n >= len(classes) else 0
    take = {c: min(counts[c], floor) for c in classes}
    left = n - sum(take.values())
    while left > 0:
        room = {c: counts[c] - take[c] for c in classes if counts[c] > take[c]}
        share = {c: left * counts[c] / sum(counts[k] for k in room) for c in room}
        whole = {c: min(room[c], int(share[c])) for c in room}
        if sum(whole.values()) == 0:  # hand out the largest remainders one by one
            for c in sorted(room, key=lambda c: (-(share[c] - int(share[c])), c))[:left]:
                whole[c] = 1
        for c, k in whole.items():
            take[c] += k
        left = n - sum(take.values())
    return take


def explanation_set(utterance_ids: Sequence[str], labels: np.ndarray, n: int, seed: int = EXPLAIN_SEED) -> np.ndarray:
    """Positions (into ``utterance_ids``, ascending) of a class-stratified sample of ``n`` utterances.

    Args:
        utterance_ids: the fold's test utterance ids.
        labels: their classes (indices or names).
        n: set size (all utterances when the fold has fewer).
        seed: the protocol's seed (``EXPLAIN_SEED``).
    """
    ids = np.asarray(utterance_ids, dtype=object)
    labels = np.asarray(labels)
    if len(ids) != len(labels):
        raise ValueError("one label per utterance id")
    rng = _rng(list(ids), seed)
    order = np.argsort(ids.astype(str), kind="stable")
    counts = {c: int((labels == c).sum()) for c in np.unique(labels)}
    chosen: list[int] = []
    for c, k in sorted(stratified_counts(counts, n).items()):
        members = order[labels[order] == c]  # this class, in id order
        chosen.extend(members[rng.choice(len(members), size=k, replace=False)] if k else [])
    return np.sort(np.asarray(chosen, dtype=np.int64))


def permutation_partners(utterance_ids: Sequence[str], seed: int = EXPLAIN_SEED) -> np.ndarray:
    """For each position, the position of another utterance (a cyclic derangement; identity for one)."""
    ids = np.asarray(utterance_ids, dtype=object)
    rng = _rng(list(ids), seed + 1)
    order = np.argsort(ids.astype(str), kind="stable")[rng.permutation(len(ids))]
    partners = np.empty(len(ids), dtype=np.int64)
    partners[order] = np.roll(order, -1)
    return partners
