"""Fault injection, run files (issue 30): a run file cut short (a kill or a full disk while Ray wrote it)
is one line naming the file and what to do, found from the files alone before Ray starts."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import pytest

from harness.cli.common import check_resumable
from harness.errors import UserError
from harness.resume_check import check_run_files, snapshot_ray_state
from harness.store import Storage


def _run(tmp_path: Path):  # noqa: ANN202
    store = Storage(tmp_path / "ray").run("r")
    folder = Path(store.path)
    (folder / "trial_0" / "checkpoint_000000").mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"state": list(range(1000)), "name": "r"}))
    (folder / "experiment_state-2026.json").write_text(json.dumps({"trials": []}))
    store.write("run.json", {"pair": "bilstm"})
    store.write("search.json", {"wall_s": 3.0})
    db = sqlite3.connect(folder / "harness" / "optuna.db")
    db.execute("create table t (x int)")
    db.executemany("insert into t values (?)", [(i,) for i in range(2000)])
    db.commit()
    db.close()
    return store, folder


def test_an_intact_run_passes(tmp_path: Path) -> None:
    store, _ = _run(tmp_path)
    check_resumable(store)


@pytest.mark.parametrize("keep", [0, 1, 40, -1])
def test_a_truncated_tuner_pkl_is_one_line(tmp_path: Path, keep: int) -> None:
    store, folder = _run(tmp_path)
    data = (folder / "tuner.pkl").read_bytes()
    (folder / "tuner.pkl").write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(UserError, match=r"/r/tuner.pkl: (empty|cut short or damaged).*run with --name NEW") as caught:
        check_resumable(store)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["experiment_state-2026.json", "harness/search.json", "harness/run.json"])
def test_a_truncated_json_state_is_one_line(tmp_path: Path, name: str) -> None:
    store, folder = _run(tmp_path)
    text = (folder / name).read_text()
    (folder / name).write_text(text[: len(text) // 2])
    with pytest.raises(UserError, match=rf"/r/{name}: not valid JSON \(cut short\?\); the run cannot resume"):
        check_run_files(store)


def test_a_truncated_optuna_db_is_one_line(tmp_path: Path) -> None:
    store, folder = _run(tmp_path)
    db = folder / "harness" / "optuna.db"
    db.write_bytes(db.read_bytes()[:5000])
    with pytest.raises(UserError, match=r"/r/harness/optuna.db: (not a readable SQLite database|SQLite reports)"):
        check_run_files(store)


def test_a_state_file_cut_short_is_repaired_from_the_last_whole_copy(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    store, folder = _run(tmp_path)
    assert snapshot_ray_state(store)
    whole = {name: (folder / name).read_bytes() for name in ("tuner.pkl", "experiment_state-2026.json")}
    (folder / "experiment_state-2026.json").write_text(json.dumps({"trials": [1, 2]}))  # Ray's next snapshot
    (folder / "experiment_state-2027.json").write_text('{"trials": [1, 2, ')  # the disk filled while Ray wrote
    with caplog.at_level("WARNING"):
        check_resumable(store)  # repaired, so it passes
    assert (
        "experiment_state-2027.json was cut short" in caplog.text and "restored from its last whole copy" in caplog.text
    )
    assert not (folder / "experiment_state-2027.json").exists()  # the set is the copy's, as it was
    assert {name: (folder / name).read_bytes() for name in whole} == whole


def test_no_copy_is_taken_while_a_state_file_is_not_whole(tmp_path: Path) -> None:
    store, folder = _run(tmp_path)
    (folder / "tuner.pkl").write_bytes((folder / "tuner.pkl").read_bytes()[:-3])
    assert not snapshot_ray_state(store)
    with pytest.raises(UserError, match="tuner.pkl: cut short or damaged"):
        check_resumable(store)
