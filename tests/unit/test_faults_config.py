"""Fault injection, config side: every value that makes no sense is one ConfigError line naming the key
and its valid range, for ``--set`` (through the real parser), search-space bounds and stored configs alike;
YAML that is malformed, tagged, too deep or an alias bomb is one line, fast."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from harness.cli.common import parse_overrides
from harness.config import RANGES, ConfigError, TrialConfig, flat_keys, key_type
from harness.tune.space import load_space

# The values the issue lists (issue 30), each as a user types it after --set.
NONSENSE = [
    "epochs=1e9",
    "lr=inf",
    "lr=.inf",
    "weight_decay=nan",
    "weight_decay=-5",
    "grad_clip=-1",
    "grad_clip=nan",
    "patience=-1",
    "audio.n_mels=0",
    "audio.n_mels=-4",
    "text.max_tokens=-1",
    "audio.max_seconds=nan",
    "audio.max_seconds=.nan",
    "batch_size=10^12",
    "batch_size=1000000000000",
    "seed=-1",
    "seed=2^64+1",
    "seed=18446744073709551617",
    "explain_samples=-5",
    "audio.hidden=0",
    "text.embed_dim=0",
    "fusion_dim=0",
    "context.past_turns=100000",
]


@pytest.mark.parametrize("item", NONSENSE)
def test_set_value_that_makes_no_sense_is_refused_naming_key_and_range(item: str) -> None:
    key = item.partition("=")[0]
    with pytest.raises(ConfigError) as caught:
        TrialConfig.from_flat(parse_overrides([item]), where="--set")
    message = str(caught.value)
    assert "\n" not in message
    assert f"--set: {key} = " in message
    limits = RANGES[key]
    # the valid range, in the key's own terms
    assert (f"{int(limits.low)}..{int(limits.high)}" if key_type(key) is int else f"{limits.high:g}") in message


def test_every_numeric_key_has_a_range_and_the_defaults_are_inside_it() -> None:
    numeric = [k for k in flat_keys() if key_type(k) in (int, float)]
    assert sorted(numeric) == sorted(RANGES)
    for key, value in TrialConfig().flat().items():
        if key in RANGES:
            assert value in RANGES[key], key


def test_edges_of_a_range_are_kept_and_one_step_outside_refused() -> None:
    assert TrialConfig.from_flat({"context.past_turns": 500, "epochs": 1, "dropout": 0.0}).epochs == 1
    for bad in ({"context.past_turns": 501}, {"epochs": 0}, {"dropout": 1.0}, {"lr": 0.0}):
        with pytest.raises(ConfigError, match="out of range; valid:"):
            TrialConfig.from_flat(bad)


def test_stored_config_is_checked_the_same_way() -> None:
    stored = TrialConfig().flat() | {"grad_clip": math.nan}  # e.g. a record's config edited by hand
    with pytest.raises(ConfigError, match=r"record.json: grad_clip = nan is out of range; valid: a finite number"):
        TrialConfig.from_flat(stored, where="record.json")
    with pytest.raises(ConfigError, match="audio.hidden = 0 is out of range"):
        TrialConfig(audio=TrialConfig().audio.__class__(hidden=0))


def test_did_you_mean_is_kept() -> None:
    with pytest.raises(ConfigError, match="did you mean 'audio.n_mels'"):
        TrialConfig.from_flat(parse_overrides(["audio.nmels=64"]), where="--set")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("lr=[1,", "--set lr=[1,: invalid YAML"),
        ("lr={a: 1", "--set lr={a: 1: invalid YAML"),
        ("lr=!!python/object:os.system {}", "could not determine a constructor for the tag"),
        ("lr=!!python/name:os.system", "could not determine a constructor for the tag"),
    ],
)
def test_set_value_that_is_not_yaml_is_one_line(item: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("{", r"\{")) as caught:
        parse_overrides([item])
    assert "\n" not in str(caught.value)


def _space(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "space.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


BOMB = "\n".join(
    ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    + [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["fixed: {epochs: *i}"]
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (BOMB, r"space.yaml:\d+: expands to more than 100,000 values"),
        ("fixed: " + "[" * 2000 + "]" * 2000, r"space.yaml:1: nested more than 32 levels deep"),
        ("fixed: {epochs: !!python/object/apply:os.system [echo hi]}", "could not determine a constructor"),
        (b"fixed: {epochs: 3}\nsearch: {}\n# caf\xe9\n", r"space.yaml:3: not UTF-8 text \(byte b'\\xe9'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"space.yaml:1: not UTF-8 text"),
        (
            "search:\n  audio.hidden: {type: int, low: 1, high: 100000000000000000000000}\n",
            r"search.audio.hidden: high: audio.hidden = 1\d+ is out of range; valid: an integer in 1..65536",
        ),
        ("search:\n  lr: {type: loguniform, low: 1.0e-5, high: .inf}\n", r"high: lr = inf is out of range"),
        ("search:\n  epochs: {type: float, low: 1, high: 5}\n", "epochs takes integers; use type int"),
        ("fixed: {seed: -1}\n", r"seed = -1 is out of range; valid: an integer in 0..4294967295"),
    ],
)
def test_bad_search_space_file_is_one_line_and_fast(tmp_path: Path, content: str | bytes, expected: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=expected) as caught:
        load_space(_space(tmp_path, content))
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - started < 10  # the bomb took 90 s and 3 GB before the limit


def test_cli_validate_prints_one_line_for_bad_set(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.validate import main

    assert main(["--set", "lr=!!python/object:os.system {}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --set lr=") and "\n" not in err
