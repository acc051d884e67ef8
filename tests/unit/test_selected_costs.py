"""Cost columns rest on every test session's selected config: nested selection may pick a 0.5 M model for
one session and a 12 M one for another, and the headline must say so (not fold 1's figures alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.corpus import EMOTIONS
from harness.records import FoldRecord, Metrics, Resources, RunMeta, TrialRecord
from harness.report.costs import fold_costs, selected_costs
from harness.report.tables import write_reports
from harness.store import Storage, write_json
from tests.fixtures.books import write_identity
from tests.fixtures.predictions import random_runs

# the selected config of each test session: total parameters (M), of which audio / text branches
SIZES = {1: (0.48, 0.2, 0.1), 2: (11.97, 0.9, 0.6), 3: (0.48, 0.2, 0.1), 4: (3.0, 0.5, 0.5), 5: (6.0, 1.0, 1.0)}


def metrics(f1: float) -> Metrics:
    return Metrics(f1, f1, f1, f1, {e: f1 for e in EMOTIONS}, [[1] * 6 for _ in range(6)], 10)


def resources(session: int, measured: bool) -> Resources:
    total, audio, text = SIZES[session]
    return Resources(
        int(total * 1e6), int(total * 1e6), None, None, 0.5, 0.1, total / 100, 100.0, None, 10.0, None, "cpu",
        latency_4s_ms=10 * total if measured else None,  # the latency step: each config's first seed
        gflops_4s=total / 2 if measured else None,
        latency_repeats=3 if measured else 0,
        device_seconds=36.0,
        params_by_modality={"audio": int(audio * 1e6), "text": int(text * 1e6)},
    )  # fmt: skip


def final_folds(seeds: int = 2) -> list[list[FoldRecord]]:
    return [
        [
            FoldRecord(s, "Ses01F", 3, 3, "max_epochs", metrics(0.5), metrics(0.5), resources(s, seed == 0))
            for s in SIZES
        ]
        for seed in range(seeds)
    ]


def test_every_sessions_config_counts_with_its_spread_and_head():
    folds = [f for trial in final_folds() for f in trial]
    per_session = fold_costs(folds).set_index("test_session")
    assert per_session.loc[2, "params_total_M"] == 11.97 and per_session.loc[1, "params_total_M"] == 0.48
    assert per_session.loc[2, "params_head_M"] == pytest.approx(11.97 - 1.5)  # fusion + context head
    assert per_session.loc[2, "head_share"] == pytest.approx((11.97 - 1.5) / 11.97, abs=1e-3)
    assert per_session.latency_measured.all()
    row = selected_costs(folds)
    totals = [t for t, _, _ in SIZES.values()]
    assert row["params_total_M"] == pytest.approx(np.mean(totals), abs=1e-3)
    assert (row["params_total_M_min"], row["params_total_M_max"]) == (0.48, 11.97)
    assert (row["latency_4s_ms_min"], row["latency_4s_ms_max"]) == (4.8, 119.7)
    assert row["latency_4s_ms"] == pytest.approx(10 * np.mean(totals), abs=1e-3)  # not session 1's 4.8
    assert row["gflops_4s_max"] == pytest.approx(5.985) and row["cost_sessions"] == 5
    assert row["model_memory_gb"] == 0.12  # the largest any session needed


def test_sessions_without_a_latency_step_are_counted_not_guessed():
    older = [f for f in final_folds(1)[0]]
    older = [
        FoldRecord(
            f.fold, f.validation_speaker, 3, 3, "max_epochs", f.validation, f.test, resources(f.fold, f.fold == 1)
        )
        for f in older
    ]  # records written when only a trial's first fold ran the latency step
    row = selected_costs(older)
    assert row["cost_sessions"] == 1 and row["latency_4s_ms"] == pytest.approx(4.8)
    assert row["params_total_M_max"] == 11.97  # sizes are on every fold's record


def test_the_report_shows_every_sessions_cost(tmp_path: Path):
    pair, folds = "cnnbilstm_bilstm", tuple(SIZES)
    meta = RunMeta(pair, "cb_final", "demo", "x", {"torch": "2.13.0"}, folds, 0, False)
    store = Storage(tmp_path / "ray").run("cb_final")
    write_identity(store, pair)
    store.write("search.json", {"extraction": [], "gpus_per_trial": 0.0, "wall_s": 5.0})
    store.write("final_configs.json", {"budget": "b", "search_run": "", "configs": []})
    for seed, records in enumerate(final_folds()):
        record = TrialRecord(meta, f"t{seed}", {"seed": seed}, "finished", records, stage="final")
        trial = f"{store.path}/run_trial_t{seed}"
        write_json(store.fs, f"{trial}/record.json", record.to_dict())
        (Path(trial) / "checkpoint_000004").mkdir()
        predictions = random_runs(np.random.default_rng(seed), pair, 0.6, [seed], 30, (10, 10))
        predictions.to_parquet(Path(trial) / "checkpoint_000004" / "predictions.parquet")
    report = write_reports(tmp_path)
    table = pd.read_csv(tmp_path / "comparison_full.csv").iloc[0]
    assert (table.params_total_M_min, table.params_total_M_max, table.cost_sessions) == (0.48, 11.97, 5)
    costs = pd.read_csv(tmp_path / "selected_costs.csv")
    assert len(costs) == 5 and sorted(costs.params_total_M) == sorted(t for t, _, _ in SIZES.values())
    text = report.read_text()
    assert "0.48–12" in text and "4.8–120" in text  # the headline's size and latency ranges over sessions
