"""``selected_configs``: which config each test fold got, and whose labels chose it.

One row per (pair, test session): the search trial chosen for that fold, the sessions whose validation
labels ranked it (``selected_on_sessions``: under nested LOSO never the test session itself; under
``loso-flat`` every session, the test one included, which is why that protocol is labelled optimistic),
its mean validation weighted F1 there, and the searched hyperparameters' values.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.tune.selection import select_configs, validation_sessions

COLUMNS = ("pair", "test_session", "trial_id", "selected_on_sessions", "val_weighted_f1")


def _search_run(members: list[Any], pair: str) -> Any | None:
    """The search run a pair's row rests on: the one its latest final stage came from, else its latest."""
    mine = [r for r in members if r.meta.pair == pair]
    finals = sorted((r for r in mine if r.stage == "final" and r.search_run), key=lambda r: r.written_at)
    searches = [r for r in mine if r.stage == "search"]
    if finals:
        named = [r for r in searches if r.meta.run == finals[-1].search_run]
        if named:
            return named[0]
    return max(searches, key=lambda r: r.written_at, default=None)


def search_runs(runs: list[Any], key: tuple) -> list[Any]:
    """Per pair of group ``key``, the search run its rows rest on."""
    members = [r for r in runs if r.meta.group == key and not r.meta.smoke_test]
    found = [_search_run(members, pair) for pair in sorted({r.meta.pair for r in members})]
    return [r for r in found if r is not None]


def _final_choice(runs: list[Any], search: Any) -> dict[int, str]:
    """What a final stage re-trained from ``search`` (its best rank per test session), where one did: it
    may have used another rule than the best validation F1 (``--select``)."""
    finals = [r for r in runs if r.stage == "final" and r.search_run == search.meta.run and r.selected]
    latest = max(finals, key=lambda r: r.written_at, default=None)
    if latest is None:
        return {}
    return {int(row["test_session"]): str(row["trial_id"]) for row in latest.selected if row.get("rank", 1) == 1}


def selected_configs_table(runs: list[Any], key: tuple) -> pd.DataFrame:
    """The selected configs of every pair of group ``key`` (``runs``: ``harness.report.tables.Run``)."""
    rows = []
    for run in search_runs(runs, key):
        pair = run.meta.pair
        by_id = {r.trial_id: r for r in run.records}
        chosen_ids = _final_choice(runs, run)
        for fold, chosen in select_configs(run.records, run.meta, 1).items():
            if fold in chosen_ids and chosen_ids[fold] in by_id:
                chosen = [by_id[chosen_ids[fold]]]
            if not chosen:
                continue
            record = chosen[0]
            sessions = validation_sessions(record)
            row: dict[str, Any] = {
                "pair": pair,
                "test_session": fold,
                "trial_id": record.trial_id,
                "selected_on_sessions": " ".join(str(s) for s in sessions),
                "val_weighted_f1": round(record.mean_val_weighted_f1 or float("nan"), 4),
                "test_session_chose_it": fold in sessions,
            }
            row |= {name: record.config.get(name, "-") for name in run.searched}
            rows.append(row)
    frame = pd.DataFrame(rows)
    # a value a pair does not search: "-" in a text column (numeric ones stay numbers, NaN shown as n/a)
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].where(frame[column].notna(), "-")
    return frame
