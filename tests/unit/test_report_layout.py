"""report.md's first screen answers: the group's title in words, the headline, the Answer and the per-emotion
table within the first 45 lines, one embedded figure, the long tables linked rather than inlined, and the
package versions in every table's header."""

from __future__ import annotations

import re

from harness.report.summary import group_title
from harness.report.tables import write_reports
from tests.unit.test_summary import GRID, write_pair

FIRST_SCREEN = 45  # lines


def test_report_md_leads_with_the_answer(tmp_path):
    for pair, accuracy in GRID.items():
        write_pair(tmp_path, pair, accuracy)
    lines = write_reports(tmp_path).read_text().splitlines()
    heading = next(line for line in lines if line.startswith("## "))
    title = "Demo corpus (synthetic, not IEMOCAP) · nested leave-one-session-out · 6 classes · test sessions 1 2 3 4 5"
    assert heading == f"## {title}"  # not "demo, loso, 6, 1 2 3 4 5"
    headline = next(i for i, line in enumerate(lines) if line.startswith("| pair") and "weighted F1" in line)
    answer = next(i for i, line in enumerate(lines) if line.startswith("**Answer**"))
    emotions = next(i for i, line in enumerate(lines) if line.startswith("Test F1 per emotion"))
    table_end = next(i for i in range(emotions + 2, len(lines)) if not lines[i].startswith("|"))
    assert headline < answer < emotions and table_end <= FIRST_SCREEN
    assert any(re.fullmatch(r"!\[.+\]\(f1_vs_latency\.png\)", line) for line in lines)  # one embedded figure
    assert sum(line.startswith("![") for line in lines) == 1
    # the 40-row selected-configs table is linked, not inlined
    assert "[selected_configs.md](selected_configs.md)" in "\n".join(lines)
    assert not any(line.startswith("| pair") and "test_session" in line for line in lines)
    for stem in ("report.md", "comparison_full.md", "per_emotion.md", "selected_costs.md"):
        assert "- Versions: " in (tmp_path / stem).read_text(), stem


def test_group_titles_say_what_the_group_is():
    assert group_title(("/data/IEMOCAP_full_release", "loso-flat", 4, (1, 2, 3, 4, 5))) == (
        "IEMOCAP (/data/IEMOCAP_full_release) · leave-one-session-out, one config for every fold (optimistic) · "
        "4 classes · test sessions 1 2 3 4 5"
    )
    assert group_title(("demo", "session5", 6, (5,))).endswith("Sessions 1-4 → Session 5 · 6 classes · test session 5")
