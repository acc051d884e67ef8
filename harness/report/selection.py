"""``selected_configs``: which config each test fold got, and whose labels chose it.

One row per (pair, test session): the search trial chosen for that fold, the sessions whose validation
labels ranked it (``selected_on_sessions``: under nested LOSO never the test session itself; under
``loso-flat`` every session, the test one included, which is why that protocol is labelled optimistic),
its mean validation weighted F1 there, and the searched hyperparameters' values.

The search run is the group's (``Group.searches``, ``harness.report.runs.search_run_of``): the same run
comparison_full and report.md rest on.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report.runs import Group, Run
from harness.tune.selection import select_configs, validation_sessions

COLUMNS = ("pair", "test_session", "trial_id", "selected_on_sessions", "val_weighted_f1")


def _final_choice(group: Group, search: Run) -> dict[int, str]:
    """What the pair's final stage re-trained from ``search`` (its best rank per test session), where one
    did: it may have used another rule than the best validation F1 (``--select``)."""
    final = next((r for r in group.rows if r.meta.pair == search.meta.pair and r.stage == "final"), None)
    if final is None or final.search_run != search.meta.run:
        return {}
    return {int(row["test_session"]): str(row["trial_id"]) for row in final.selected if row.get("rank", 1) == 1}


def selected_configs_table(runs: list[Run], group: Group) -> pd.DataFrame:
    """The selected configs of every pair of ``group`` (``runs``: every loaded run, kept for callers)."""
    rows = []
    for pair, run in sorted(group.searches.items()):
        by_id = {r.trial_id: r for r in run.records}
        chosen_ids = _final_choice(group, run)
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
                "search_run": run.meta.run,
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
