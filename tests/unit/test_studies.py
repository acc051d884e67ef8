"""harness.tune.studies: a run's Optuna studies where Optuna's own tools open them."""

from __future__ import annotations

import pickle

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from harness.tune.studies import OPTUNA_DB, OPTUNA_JOURNAL, StoredJournal, optuna_storage, study_name


def _optimise(storage, name: str, n: int) -> None:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)


def test_a_local_run_keeps_its_studies_in_sqlite_in_its_books(tmp_path):
    storage = optuna_storage(str(tmp_path / "ray"), "run")
    assert isinstance(storage, RDBStorage)
    _optimise(storage, study_name("run", 3), 2)
    database = tmp_path / "ray" / "run" / "harness" / OPTUNA_DB
    assert len(optuna.load_study(study_name="run-outer3", storage=f"sqlite:///{database}").trials) == 2
    _optimise(pickle.loads(pickle.dumps(storage)), "run-outer3", 1)  # reopened (as Ray's restore does), not duplicated
    assert len(optuna.get_all_study_names(f"sqlite:///{database}")) == 1
    assert len(optuna.load_study(study_name="run-outer3", storage=f"sqlite:///{database}").trials) == 3


def test_a_uri_run_keeps_a_journal_that_optunas_file_backend_reads(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.tune.studies._is_local", lambda uri: False)  # as on s3://: no SQLite there
    storage = optuna_storage(str(tmp_path), "run")
    assert isinstance(storage, JournalStorage)
    _optimise(storage, "run", 3)
    copy = JournalStorage(JournalFileBackend(str(tmp_path / "run" / "harness" / OPTUNA_JOURNAL)))
    assert [t.state.name for t in optuna.load_study(study_name="run", storage=copy).trials] == ["COMPLETE"] * 3
    reread = StoredJournal(f"{tmp_path}/run/harness/{OPTUNA_JOURNAL}")
    logs = storage._backend.read_logs(0)
    assert reread.read_logs(0) == logs and len(reread.read_logs(2)) == len(logs) - 2
