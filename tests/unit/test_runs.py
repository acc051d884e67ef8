"""harness.report.runs and harness.books: one run loader and one rule for the search run every table rests
on; typed, versioned books and records (older converted or refused with one line); a report that reads what
it can. Records are built by the production code (tests/fixtures/records.py)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd
import pytest

from harness.books import FINAL_BOOK, RUN_BOOK, SUMMARY_BOOK, RunIdentity, SearchSummary, read_book
from harness.errors import UserError
from harness.records import RECORD_SCHEMA, read_record, record_from_dict
from harness.report.runs import load
from harness.report.tables import write_reports
from harness.store import Storage
from tests.fixtures.records import write_final, write_search

PAIR = "wav2vec_bilstm"  # a pretrained audio encoder: the headline says how it was used
FROZEN, TUNED = {"audio.finetune_layers": 0, "lr": 0.001}, {"audio.finetune_layers": 2, "lr": 0.002}


def _report(tmp_path):
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    write_reports(results, tmp_path / "ray")
    return (
        pd.read_csv(results / "comparison_full.csv"),
        pd.read_csv(results / "selected_configs.csv"),
        (results / "report.md").read_text(),
    )


def test_a_fine_tuned_final_stage_reads_fine_tuned_in_the_headline(tmp_path):
    search = write_search(tmp_path / "ray", PAIR, "s", [(TUNED, 0.7), (FROZEN, 0.5)], "2026-01-01 00:00:00 UTC")
    finals = write_final(tmp_path / "ray", search, "f")
    assert "per_fold" in finals[0].config  # the final stage's trial config is {seed, measure_costs, per_fold}
    comparison, _, report = _report(tmp_path)
    assert comparison.set_index("pair").loc[PAIR, "stage"] == "final"
    assert "fine-tuned top 2" in report and "frozen" not in report
    # a record of schema 0 (no fold configs) is converted on reading, to the same cell
    for path in (tmp_path / "ray" / "f").glob("*/record.json"):
        data = json.loads(path.read_text())
        data.pop("schema")
        for fold in data["folds"]:
            fold.pop("config")
        path.write_text(json.dumps(data))
        assert read_record(path).folds[0].config == finals[0].folds[0].config | {
            "seed": read_record(path).config["seed"]
        }
    _, _, report = _report(tmp_path)
    assert "fine-tuned top 2" in report and "frozen" not in report


def test_every_table_rests_on_the_same_search_run(tmp_path):
    # an older run whose best config is frozen and scores higher, a later one whose best is fine-tuned
    older = write_search(tmp_path / "ray", PAIR, "older", [(FROZEN, 0.9)], "2026-01-01 00:00:00 UTC")
    write_search(tmp_path / "ray", PAIR, "later", [(TUNED, 0.5)], "2026-01-02 00:00:00 UTC")
    comparison, selected, report = _report(tmp_path)
    assert list(comparison.run) == ["later"]  # no final stage: the latest search run (not the best scoring)
    assert set(selected.search_run) == {"later"} and set(selected.trial_id) == {"later_t0"}
    assert "fine-tuned top 2" in report and "frozen" not in report
    # a final stage from the older search: every table moves to it, the search figures too
    write_final(tmp_path / "ray", older, "final_from_older")
    comparison, selected, report = _report(tmp_path)
    row = comparison.set_index("pair").loc[PAIR]
    assert row.run == "final_from_older" and row.search_trials == 1
    assert set(selected.search_run) == {"older"} and set(selected.trial_id) == {"older_t0"}
    assert "frozen" in report and "fine-tuned top 2" not in report


def test_the_report_reads_what_it_can_and_counts_what_it_skipped(tmp_path):
    storage = tmp_path / "ray"
    write_search(storage, PAIR, "s", [(TUNED, 0.7), (FROZEN, 0.5), (FROZEN, 0.4), (FROZEN, 0.3)], "2026-01-01")
    for name, text in (("s_t1", "{}"), ("s_t2", "[]"), ("s_t3", '{"trial_id": 3, "folds": "x"}')):
        (storage / "s" / f"run_trial_{name}" / "record.json").write_text(text)
    (storage / "s" / "run_trial_s_t4").mkdir()
    (storage / "s" / "run_trial_s_t4" / "record.json").write_text("{not json")
    duplicate = storage / "s" / "run_trial_s_t0 copy"  # the same trial in two folders (a copied run)
    duplicate.mkdir()
    duplicate.joinpath("record.json").write_text((storage / "s" / "run_trial_s_t0" / "record.json").read_text())
    (storage / "lost" / "run_trial_x").mkdir(parents=True)  # a run whose books are gone
    loaded = load(storage)
    (run,) = loaded.runs
    assert [r.trial_id for r in run.records] == ["s_t0"]  # the duplicate once, the damaged ones skipped
    assert len(loaded.skipped) == 5 and any("lost: no harness/run.json" in line for line in loaded.skipped)
    assert all("\n" not in line for line in loaded.skipped)
    comparison, selected, report = _report(tmp_path)
    assert list(comparison.run) == ["s"] and list(selected.trial_id.unique()) == ["s_t0"]
    assert "5 stored record(s) or run(s) skipped" in report


def test_an_older_book_is_converted_and_a_newer_or_unknown_one_refused(tmp_path):
    store = Storage(tmp_path).run("r")
    identity = RunIdentity("bilstm", "demo", "f", {}, (5,), "loso", 6, "release", 2, 0, "search", split_version=3)
    old = {k: v for k, v in json.loads(json.dumps(asdict(identity), default=list)).items() if k != "schema"}
    store.write(RUN_BOOK, old)  # written before books were versioned
    identity.check_against(store)  # schema 0 reads as 1: the run resumes
    assert read_book(store, RUN_BOOK, RunIdentity) == identity
    store.write(RUN_BOOK, old | {"schema": 7})
    with pytest.raises(UserError, match=r"run\.json: schema 7 is newer than this harness reads \(1\)"):
        identity.check_against(store)
    store.write(SUMMARY_BOOK, {"wall_s": 3.0, "wal_s": 4.0})
    with pytest.raises(UserError, match=r"search\.json: unknown key\(s\) 'wal_s' in SearchSummary"):
        read_book(store, SUMMARY_BOOK, SearchSummary)
    store.write(FINAL_BOOK, {"budget": "b", "search_run": "s", "configs": [{"seed": "x"}]})
    with pytest.raises(UserError, match=r"final_configs\.json: not a valid FinalConfigs") as err:
        read_book(store, FINAL_BOOK, __import__("harness.books").books.FinalConfigs)
    assert "\n" not in str(err.value)


def test_a_record_of_a_newer_schema_or_with_an_unknown_key_is_refused(tmp_path):
    search = write_search(tmp_path, PAIR, "s", [(TUNED, 0.7)], "2026-01-01")
    data = search[0].to_dict()
    assert record_from_dict(json.loads(json.dumps(data, default=str))) == search[0]
    with pytest.raises(UserError, match=f"record schema {RECORD_SCHEMA + 1} is newer"):
        record_from_dict(data | {"schema": RECORD_SCHEMA + 1}, "x/record.json")
    with pytest.raises(UserError, match=r"x/record\.json: unknown key\(s\) 'colour' in TrialRecord"):
        record_from_dict(data | {"colour": "red"}, "x/record.json")
