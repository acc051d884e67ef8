"""Which contrasts a group's report tests, fixed by the design before any result is seen: the small/large
grids the registry defines, their factorial terms (the primary family), each fused pair against its own
unimodal baselines (the fusion family) and every other pairwise difference (exploratory), each difference
oriented by the question (large minus small, fused minus unimodal; :func:`orient`). Imports neither torch
nor Ray; :mod:`harness.report.contrasts` evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.models.encoders.registry import get_encoder
from harness.models.pairs import PAIRS, unimodal_baseline

FAMILIES = ("primary", "fusion", "exploratory")
FACTORIAL_TERMS = ("audio size main effect", "text size main effect", "interaction")


@dataclass(frozen=True)
class Contrast:
    """A weighted sum of pairs' metric: ``sum(weight * metric(pair))``.

    Attributes:
        term: What it measures, in words (``audio swap (text bilstm)``, ``interaction``, ...).
        terms: ``(pair, weight)`` per pair.
        grid: The grid it belongs to (``""`` for a fusion gain or an exploratory difference).
    """

    term: str
    terms: tuple[tuple[str, float], ...]
    grid: str = ""

    @property
    def key(self) -> tuple[tuple[str, float], ...]:
        """The same contrast whatever its name or where it appears."""
        return tuple(sorted(self.terms))

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(pair for pair, _ in self.terms)


@dataclass(frozen=True)
class Grid:
    """A 2x2 small/large grid: cells[(audio_large, text_large)] is the fused pair of that cell."""

    name: str
    cells: dict[tuple[bool, bool], str]


def _large(encoder: str | None) -> bool:
    """Whether a registered encoder is pretrained (large) rather than trained from scratch (small)."""
    return encoder is not None and get_encoder(encoder).pretrained


def _size(pair: str) -> int:
    """Number of pretrained (large) encoders of a registered pair (0 for an unknown one)."""
    spec = PAIRS.get(pair)
    return sum(v.pretrained for v in spec.variants.values()) if spec else 0


def _fused(pair: str) -> bool:
    spec = PAIRS.get(pair)
    return bool(spec and spec.is_fused)


def grids(pairs: list[str]) -> list[Grid]:
    """Every small/large grid with all four fused pairs among ``pairs`` (registry order): audio encoders
    trained from scratch x pretrained, text likewise."""
    fused = {(PAIRS[p].audio, PAIRS[p].text): p for p in PAIRS if p in pairs and PAIRS[p].is_fused}
    audio = list(dict.fromkeys(a for a, _ in fused))
    text = list(dict.fromkeys(t for _, t in fused))
    out = []
    for a_small, a_large in ((s, x) for s in audio if not _large(s) for x in audio if _large(x)):
        for t_small, t_large in ((s, x) for s in text if not _large(s) for x in text if _large(x)):
            cells = {
                (al, tl): fused.get((a_large if al else a_small, t_large if tl else t_small))
                for al in (False, True)
                for tl in (False, True)
            }
            if all(cells.values()):
                name = f"audio {a_small}->{a_large} x text {t_small}->{t_large}"
                out.append(Grid(name, {k: v for k, v in cells.items() if v is not None}))
    return out


def grid_contrasts(grid: Grid) -> list[Contrast]:
    """The grid's four swaps, two main effects and interaction, each oriented large minus small."""
    c = grid.cells
    swaps = [
        Contrast(f"audio swap (text {'large' if tl else 'small'})", ((c[True, tl], 1.0), (c[False, tl], -1.0)))
        for tl in (False, True)
    ] + [
        Contrast(f"text swap (audio {'large' if al else 'small'})", ((c[al, True], 1.0), (c[al, False], -1.0)))
        for al in (False, True)
    ]
    effects = [
        Contrast(
            "audio size main effect",
            ((c[True, False], 0.5), (c[True, True], 0.5), (c[False, False], -0.5), (c[False, True], -0.5)),
        ),
        Contrast(
            "text size main effect",
            ((c[False, True], 0.5), (c[True, True], 0.5), (c[False, False], -0.5), (c[True, False], -0.5)),
        ),
        Contrast(
            "interaction",
            ((c[True, True], 1.0), (c[False, True], -1.0), (c[True, False], -1.0), (c[False, False], 1.0)),
        ),
    ]
    return [Contrast(x.term, x.terms, grid.name) for x in swaps + effects]


def fusion_contrasts(pairs: list[str]) -> list[tuple[Contrast, str]]:
    """Each fused pair among ``pairs`` minus each of its unimodal baselines present, with the baseline's
    modality."""
    out = []
    for name in sorted(pairs):
        spec = PAIRS.get(name)
        if spec is None or not spec.is_fused:
            continue
        for modality in spec.encoders:
            baseline = unimodal_baseline(spec, modality)
            if baseline is not None and baseline.name in pairs:
                out.append((Contrast(f"fusion gain over {modality}", ((name, 1.0), (baseline.name, -1.0))), modality))
    return out


def primary_family(finals: dict[str, pd.DataFrame]) -> list[Contrast]:
    """The group's primary contrasts: each grid's two main effects and interaction, each once."""
    out, seen = [], set()
    for contrast in (x for g in grids(list(finals)) for x in grid_contrasts(g) if x.term in FACTORIAL_TERMS):
        if contrast.key not in seen:
            seen.add(contrast.key)
            out.append(contrast)
    return out


def fusion_family(finals: dict[str, pd.DataFrame]) -> list[Contrast]:
    """Each fused pair minus each of its unimodal baselines with a final run."""
    return [x for x, _ in fusion_contrasts(list(finals))]


def exploratory_contrasts(finals: dict[str, pd.DataFrame], taken: set) -> list[Contrast]:
    """Every difference of two pairs (oriented by :func:`orient`) not in a pre-specified family, the grid's
    single swaps included (they are pairwise differences)."""
    names, out = list(finals), []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            a, b, _ = orient(x, y)
            contrast = Contrast(f"{a} - {b}", ((a, 1.0), (b, -1.0)))
            if contrast.key not in taken:
                taken.add(contrast.key)
                out.append(contrast)
    return out


def orient(x: str, y: str) -> tuple[str, str, str]:
    """``(a, b, rule)``: the order in which a difference a minus b answers the question.

    Fused minus unimodal when exactly one is fused; else large minus small (more pretrained encoders first);
    else the registry's order (the pair registered first is the reference b; unknown pairs after known
    ones, by name).
    """
    if _fused(x) != _fused(y):
        return (x, y, "fused - unimodal") if _fused(x) else (y, x, "fused - unimodal")
    if _size(x) != _size(y):
        return (x, y, "large - small") if _size(x) > _size(y) else (y, x, "large - small")
    order = list(PAIRS)

    def rank(p: str) -> tuple[int, str]:
        return (order.index(p) if p in order else len(order), p)

    return (y, x, "registry order") if rank(x) < rank(y) else (x, y, "registry order")
