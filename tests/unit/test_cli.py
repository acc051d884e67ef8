"""harness.cli: validate, --set parsing"""
from __future__ import annotations



def test_validate_command_checks_every_pair():
    from harness.cli.validate import main

    assert main([]) == 0


def test_set_overrides_parse_numbers_like_a_shell_user_writes_them():
    from harness.cli.common import parse_overrides

    assert parse_overrides(["lr=1e-3", "epochs=3", "fusion=gated", "class_weighted=false", "audio.model=/m/w2v"]) == {
        "lr": 0.001, "epochs": 3, "fusion": "gated", "class_weighted": False, "audio.model": "/m/w2v"}
