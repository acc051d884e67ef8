"""harness.store: a run's records as the trials (checkpoints) and the driver (record.json) leave them."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.corpus import EMOTIONS
from harness.records import FoldRecord, Metrics, Resources, RunMeta, TrialRecord
from harness.store import Storage, trial_record, write_json

METRICS = Metrics(0.5, 0.5, 0.5, 0.5, {e: 0.5 for e in EMOTIONS}, [[0] * 6 for _ in range(6)], 10)
RESOURCES = Resources(1, 1, None, None, 0.5, 0.1, 0.01, 100.0, 1.0, 1.0, None, "cpu")
FOLD = FoldRecord(1, "Ses01F", 1, 1, "max_epochs", METRICS, METRICS, RESOURCES)
META = RunMeta("bilstm", "run", "demo", "x", {}, (5,), 0, False)


def record(trial: str, status: str) -> dict:
    return TrialRecord(META, trial, {"lr": 0.1}, status, []).to_dict()


def _record(meta: RunMeta, trial: str, status: str, folds: list[FoldRecord]) -> dict:
    return TrialRecord(meta, trial, {"lr": 0.1}, status, folds).to_dict()


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


def test_predictions_come_from_complete_trials_latest_checkpoint(tmp_path):
    store = Storage(tmp_path).run("run")
    meta = RunMeta("bilstm", "run", "demo", "x", {}, (1, 2), 0, False)
    for trial, seed, ended in (("a", 0, "finished"), ("b", 1, "finished"), ("c", 2, "failed")):
        for n, folds in enumerate(([1], [1, 2])):
            folder = tmp_path / "run" / f"trial_{trial}" / f"checkpoint_00000{n}"
            folder.mkdir(parents=True)
            pd.DataFrame({"seed": seed, "fold": folds}).to_parquet(folder / "predictions.parquet")
        fold_records = [FOLD] * (2 if ended == "finished" else 1)  # c failed after one fold
        write_json(store.fs, f"{store.path}/trial_{trial}/record.json", _record(meta, trial, ended, fold_records))
    frame = store.predictions()
    assert sorted(zip(frame.seed, frame.fold)) == [(0, 1), (0, 2), (1, 1), (1, 2)]  # never the failed trial's


def test_a_checkpoint_with_more_folds_wins_over_a_stale_driver_record(tmp_path):
    store = Storage(tmp_path).run("run")
    fs, base = store.fs, store.path
    meta = RunMeta("bilstm", "run", "demo", "x", {}, (1, 2), 0, False)
    write_json(fs, f"{base}/t/record.json", _record(meta, "t", "failed", [FOLD]))  # written, then the driver died
    write_json(fs, f"{base}/t/checkpoint_000001/record.json", _record(meta, "t", "finished", [FOLD, FOLD]))
    assert trial_record(fs, f"{base}/t").status == "finished"
    write_json(fs, f"{base}/t/record.json", _record(meta, "t", "stopped_early", [FOLD, FOLD]))
    assert trial_record(fs, f"{base}/t").status == "stopped_early"  # as many folds: how it ended


def test_run_uris_keep_the_query_after_the_path():
    storage = Storage("s3://bucket/runs?endpoint_override=localhost:9000&scheme=http")
    assert storage.run("a").uri == "s3://bucket/runs/a?endpoint_override=localhost:9000&scheme=http"
    assert storage.run("a").path == "bucket/runs/a"


def test_a_folder_without_the_runs_books_is_not_a_run(tmp_path):
    (tmp_path / "someone_elses_experiment" / "trial_x").mkdir(parents=True)
    assert Storage(tmp_path).runs() == []


def test_trial_folders_the_experiment_never_knew_are_dropped(tmp_path):
    store = Storage(tmp_path).run("run")
    store.write("run.json", {"pair": "bilstm"})
    for trial in ("a", "b", "orphan"):
        write_json(store.fs, f"{store.path}/trial_{trial}/checkpoint_000000/record.json", record(trial, "finished"))
    assert store.drop_trials_except(frozenset({"trial_a", "trial_b"})) == ["trial_orphan"]
    assert [r.trial_id for r in store.records()] == ["a", "b"] and store.read("run.json") == {"pair": "bilstm"}


def test_a_corrupt_record_or_predictions_file_is_an_error_naming_it(tmp_path):
    import pyarrow.fs as pafs

    from harness.errors import UserError
    from harness.store import trial_predictions, trial_record

    trial = tmp_path / "trial"
    (trial / "checkpoint_000000").mkdir(parents=True)
    (trial / "record.json").write_text('{"trial_id": ')
    with pytest.raises(UserError, match=r"trial/record\.json: not valid JSON"):
        trial_record(pafs.LocalFileSystem(), str(trial))
    (trial / "checkpoint_000000" / "predictions.parquet").write_bytes(b"PAR1 cut off")
    with pytest.raises(UserError, match=r"checkpoint_000000/predictions\.parquet: not a readable predictions table"):
        trial_predictions(pafs.LocalFileSystem(), str(trial))
