"""A golden report.md from a fixture storage (the 2x2 grid and its baselines, each with a search and a final
stage, written by the production record code): the next refactor of the report stage is pinned.

When report.md changes on purpose, regenerate it and read the diff before committing:

    HARNESS_UPDATE_GOLDEN=1 python -m pytest -q tests/unit/test_golden_report.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.report.tables import write_reports
from tests.fixtures.records import write_final, write_search

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "report.md"
# pair -> (accuracy of its final stage, its searched configs with their validation F1)
PAIRS = {
    "cnnbilstm_bilstm": (0.55, [({"lr": 0.001}, 0.5), ({"lr": 0.003}, 0.45)]),
    "wav2vec_bilstm": (0.62, [({"lr": 0.001, "audio.finetune_layers": 2}, 0.6), ({"lr": 0.002}, 0.5)]),
    "cnnbilstm_albert": (0.6, [({"lr": 0.002, "text.finetune_layers": 0}, 0.55)]),
    "wav2vec_albert": (0.7, [({"lr": 0.001, "audio.finetune_layers": 1, "text.finetune_layers": 0}, 0.65)]),
    "cnnbilstm": (0.45, [({"lr": 0.001}, 0.4)]),
    "bilstm": (0.5, [({"lr": 0.001}, 0.45)]),
}


def build(tmp_path: Path) -> str:
    storage = tmp_path / "ray"
    for pair, (accuracy, configs) in PAIRS.items():
        search = write_search(storage, pair, f"{pair}_search", configs, "2026-01-01 00:00:00 UTC")
        write_final(storage, search, f"{pair}_final", seeds=2, accuracy=accuracy)
    results = tmp_path / "results"
    results.mkdir()
    text = write_reports(results, storage).read_text()
    return re.sub(re.escape(str(tmp_path)), "TMP", text)


def test_report_md_matches_the_golden_file(tmp_path):
    text = build(tmp_path)
    if os.environ.get("HARNESS_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"no golden file: run HARNESS_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == GOLDEN.read_text(), (
        "report.md changed; if on purpose: HARNESS_UPDATE_GOLDEN=1 python -m pytest -q tests/unit/test_golden_report.py"
    )
