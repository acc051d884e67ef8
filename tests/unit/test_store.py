"""harness.store: a run's records as the trials (checkpoints) and the driver (record.json) leave them."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.records import RunMeta, TrialRecord
from harness.store import Storage, trial_record, write_json

META = RunMeta("bilstm", "run", "demo", "x", {}, (5,), 0, False)


def record(trial: str, status: str) -> dict:
    return TrialRecord(META, trial, {"lr": 0.1}, status, []).to_dict()


@pytest.mark.parametrize("as_uri", [False, True])
def test_records_prefer_how_the_trial_ended_then_its_latest_checkpoint(tmp_path, as_uri):
    storage = Storage(f"file://{tmp_path}" if as_uri else tmp_path)
    store = storage.run("run")
    store.write("run.json", {"pair": "bilstm"})
    fs, base = store.fs, store.path
    write_json(fs, f"{base}/trial_a/checkpoint_000000/record.json", record("a", "running"))
    write_json(fs, f"{base}/trial_a/checkpoint_000001/record.json", record("a", "finished"))
    write_json(fs, f"{base}/trial_b/checkpoint_000000/record.json", record("b", "running"))
    write_json(fs, f"{base}/trial_b/record.json", record("b", "stopped_early"))  # the driver's, as it ended
    fs.create_dir(f"{base}/trial_c")  # a trial that never finished a fold
    assert trial_record(fs, f"{base}/trial_c") is None
    assert [(r.trial_id, r.status) for r in store.records()] == [("a", "finished"), ("b", "stopped_early")]
    assert [r.name for r in storage.runs()] == ["run"]
    assert store.read("run.json") == {"pair": "bilstm"} and store.read("search.json") is None
    assert not list(tmp_path.rglob("*.tmp*"))  # writes go through a temporary file, then a move


def test_predictions_come_from_each_trials_latest_checkpoint(tmp_path):
    store = Storage(tmp_path).run("run")
    for trial, seed in (("a", 0), ("b", 1)):
        for n, folds in enumerate(([1], [1, 2])):
            folder = tmp_path / "run" / f"trial_{trial}" / f"checkpoint_00000{n}"
            folder.mkdir(parents=True)
            pd.DataFrame({"seed": seed, "fold": folds}).to_parquet(folder / "predictions.parquet")
    frame = store.predictions()
    assert sorted(zip(frame.seed, frame.fold)) == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_a_folder_without_the_runs_books_is_not_a_run(tmp_path):
    (tmp_path / "someone_elses_experiment" / "trial_x").mkdir(parents=True)
    assert Storage(tmp_path).runs() == []
