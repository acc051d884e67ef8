"""``--mlflow``: a folder becomes MLflow's SQLite store in it (MLflow 3 refuses new data in its file store),
and a store that fails (e.g. a resumed run's pickled callback pointing at a file store) is named in one
warning line while the search goes on. Skips, saying why, where MLflow is not installed."""

from __future__ import annotations

import logging

import pytest

from harness.errors import UserError
from harness.logs import check_mlflow

pytest.importorskip("mlflow", reason="MLflow is not installed (an optional extra: pip install 'harness[mlflow]')")


def test_a_folder_becomes_a_sqlite_store_in_it(tmp_path):
    assert check_mlflow(str(tmp_path / "runs")) == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert (tmp_path / "runs").is_dir()
    assert check_mlflow((tmp_path / "other").as_uri()) == f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
    assert check_mlflow(f"sqlite:///{tmp_path / 'a.db'}") == f"sqlite:///{tmp_path / 'a.db'}"
    assert check_mlflow("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(UserError, match="does not exist"):
        check_mlflow(str(tmp_path / "missing" / "runs"))


def test_a_failing_store_is_named_in_one_line_and_the_search_goes_on(tmp_path, caplog):
    from harness.tune.tracking import HarnessMLflow

    callback = HarnessMLflow((tmp_path / "old").as_uri(), "run1", "bilstm", {"epochs": 1})
    with caplog.at_level(logging.WARNING, logger="harness.tune.tracking"):
        callback.setup()  # MLflow 3's file store: "in maintenance mode", raised by MLflow
        callback.log_trial_result(1, object(), {"mean_val_weighted_f1": 0.5})  # never reaches MLflow
        callback.log_trial_end(object())
    warnings = [r for r in caplog.records if r.name == "harness.tune.tracking"]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    message = warnings[0].getMessage()
    assert "MLflow tracking to file://" in message and "opening the store" in message and "--name NEW" in message
