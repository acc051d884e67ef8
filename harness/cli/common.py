"""What every command shares: ``--set`` parsing, checks of paths and checkpoints before Ray starts,
the run's identity (so a rerun with other options is refused), provenance."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config import ConfigError
from harness.corpus.folds import SPLIT_VERSION
from harness.errors import UserError
from harness.models.hub import (  # resolved once per process there; re-exported for the commands importing them here
    checkpoint_available as checkpoint_available,
)
from harness.models.hub import local_checkpoint_problem as local_checkpoint_problem
from harness.models.hub import resolve_checkpoint as resolve_checkpoint
from harness.store import RunStore, read_json


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        value = yaml.safe_load(raw)  # "3" -> 3, "true" -> True, "attention" -> "attention"
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
            except ValueError:
                pass
        values[key.strip()] = value
    return values


def git_hash() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for package in ("torch", "transformers", "ray", "optuna", "librosa", "scikit-learn"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run the run it is. A rerun into the same folder must match, else it is refused."""

    pair: str
    data_source: str
    fingerprint: str
    space: dict[str, Any]
    test_sessions: tuple[int, ...]
    protocol: str
    classes: int
    labels: str
    num_samples: int
    seed: int
    stage: str
    final: dict[str, Any] | None = None  # final stage: {"seeds": S, "top_k": K[, "select": rule]}
    split_version: int = SPLIT_VERSION
    subset: str = "all"
    fidelity: str = "epochs"
    inner_folds: int = 0  # nested: inner folds per outer fold (0: all)
    objectives: tuple[str, ...] = ("weighted_f1",)

    def check_against(self, store: RunStore) -> None:
        """Store this identity in the run's books, or compare it with the stored one; raise ``UserError``
        naming what differs."""
        mine = json.loads(json.dumps(self.__dict__, default=list))
        try:
            stored = store.read("run.json")
            if stored is None:
                if store.trial_paths() or any(
                    f == TUNER_STATE or f.startswith(EXPERIMENT_STATE) for f in store.files()
                ):
                    raise UserError(
                        f"{store.uri}: holds a Ray Tune experiment but not this harness's harness/run.json "
                        f"(damaged, or another tool's); run with --name NEW, or delete {store.uri} to start again"
                    )
                store.write("run.json", mine)
                return
            check_resumable(store)
        except UserError:
            raise
        except (OSError, ValueError) as err:
            raise UserError(f"{store.uri}: cannot keep the run's books there ({str(err).splitlines()[0]})") from None
        differ = [k for k in mine if stored.get(k) != mine[k]]
        if not differ:
            return
        detail = "; ".join(f"{k}: stored {_short(stored.get(k))}, now {_short(mine[k])}" for k in differ)
        hint = "run with --name NEW for a new run"
        if differ == ["num_samples"]:
            hint += (
                " (a Ray Tune experiment cannot be extended with more trials honestly: its search state "
                "and ASHA rungs were built for the stored number)"
            )
        raise UserError(
            f"{store.uri}: this run was started with other options ({detail}); {hint}, or delete "
            f"{store.uri} to start it again"
        )


# What Ray Tune restores an experiment from, at the top of its folder
TUNER_STATE, EXPERIMENT_STATE = "tuner.pkl", "experiment_state-"


def check_resumable(store: RunStore) -> None:
    """A started run whose trials exist must resume from Ray Tune's state: without it Ray would start the
    experiment afresh and the run would lose (and then drop) its trials; a half-written state is a Ray
    traceback after Ray started. Checked before Ray, from the files alone."""
    files = store.files()
    if store.trial_paths() and TUNER_STATE not in files:
        raise UserError(
            f"{store.uri}/{TUNER_STATE}: missing, so Ray Tune cannot resume this run's trials; run with "
            f"--name NEW, or delete {store.uri} to start again"
        )
    for name in (f for f in files if f.startswith(EXPERIMENT_STATE) and f.endswith(".json")):
        read_json(store.fs, f"{store.path}/{name}")  # UserError naming the file when it is not JSON
    store.read("search.json")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
