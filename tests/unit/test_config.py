"""harness.config"""

from __future__ import annotations

import pytest

from harness.config import ConfigError, TrialConfig


def test_config_rejects_unknown_and_mistyped_keys():
    with pytest.raises(ConfigError, match="did you mean 'audio.hidden'"):
        TrialConfig.from_flat({"audio.hiden": 3})
    with pytest.raises(ConfigError, match="expected an integer"):
        TrialConfig.from_flat({"epochs": 2.5})
    with pytest.raises(ConfigError, match="fusion must be one of"):
        TrialConfig.from_flat({"fusion": "sum"})
    with pytest.raises(
        ConfigError, match=r"explain_budget = -0.1 is out of range; valid: a finite number in \[0, 100\]"
    ):
        TrialConfig.from_flat({"explain_budget": -0.1})
    cfg = TrialConfig.from_flat({"lr": 0.01, "text.hidden": 32})
    assert TrialConfig.from_flat(cfg.flat()) == cfg
