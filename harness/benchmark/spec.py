"""A study as one frozen object, built once from the command line: ``RunOptions`` (what a search and a
benchmark share: data, folds, protocol, resources, storage ...) and ``BenchmarkSpec`` (the pairs, the
budget, the seeds and the selection rule of the final stage). Nothing below the CLI sees argparse.

Every check of an option happens here, before anything is read or started: a spec that exists is a spec
that can run. Derive a variant with ``dataclasses.replace`` (then call ``checked()`` again).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from harness import safe_yaml
from harness.config import ConfigError, TrialConfig, check_value, did_you_mean, flat_keys, key_type
from harness.corpus import SESSIONS
from harness.corpus.presets import PRESETS
from harness.logs import check_mlflow
from harness.tune.objectives import parse_objectives
from harness.tune.selection import DEFAULT_MARGIN

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_encoder_key(key: str) -> bool:
    from harness.models.hub import split_encoder_keys

    return bool(split_encoder_keys({key: ""})[1])


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as config values, checked the one way every command checks them: a known
    key (else "did you mean"), a number inside its range. ``search``, ``benchmark`` and ``validate`` call it."""
    values: dict[str, Any] = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key = key.strip()
        if key.endswith(".model") and key_type(key) is None and is_encoder_key(key):
            values[key] = raw.strip()  # --set whisper.model=DIR: one encoder's checkpoint (harness.models.hub)
            continue
        if key_type(key) is None:
            raise ConfigError(f"--set: unknown key {key!r}{did_you_mean(key, flat_keys())}")
        # "3" -> 3, "true" -> True, "attention" -> "attention"; bad YAML, a tag or a bomb is one ConfigError line
        value = safe_yaml.load(raw, f"--set {item[:80]}", lines=False)
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
            except ValueError:
                pass
        check_value(key, value, "--set")
        TrialConfig.from_flat({key: value}, where="--set")  # its type, as a trial's config would read it
        values[key] = value
    return values


@dataclass(frozen=True)
class RunOptions:
    """Every option of a search (one pair) or of a benchmark's stages, checked (``checked``)."""

    data: str | None = None  # IEMOCAP_full_release folder; None: the built-in demo corpus
    num_samples: int = 8
    gpus_per_trial: float | None = None  # None: 0.25 where Ray sees a GPU, else 0
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None  # None: what the resources hold
    storage: str | None = None  # None: RESULTS/ray
    results: str = "results"
    seed: int = 0
    folds: tuple[int, ...] = SESSIONS
    overrides: tuple[str, ...] = ()  # ``--set`` items as typed; ``fixed`` is their checked values
    address: str | None = None
    protocol: str = "loso"
    subset: str = "all"
    objectives: tuple[str, ...] = ("weighted_f1",)
    inner_folds: int | None = None  # nested loso: inner folds per outer fold (None: all)
    fidelity: str = "epochs"
    optuna_storage: str | None = None
    classes: int = 6
    labels: str = "release"
    skip_bad: bool = False
    smoke_test: bool = False
    allow_stand_ins: bool = False  # random-init stand-ins for published checkpoints that cannot load (not demo)
    no_report: bool = False
    mlflow: str | None = None
    text_source: str = "gold"  # gold transcripts, or asr (harness.features.asr; model: --set text.asr_model)
    keep_models: bool = True  # final stage: keep each fold's model (harness.train.keep)

    @property
    def fixed(self) -> dict[str, Any]:
        """The ``--set`` values (checked keys and ranges)."""
        return parse_overrides(self.overrides)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **changes: Any) -> RunOptions:
        """The options of ``harness.cli.run.add_run_arguments`` (``changes`` replace parsed values), checked."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in vars(args).items() if k in names} | changes
        objectives = values.get("objectives", "weighted_f1")
        values |= {
            "folds": tuple(values.get("folds", SESSIONS)),
            "overrides": tuple(values.get("overrides", ())),
            "objectives": parse_objectives(objectives) if isinstance(objectives, str) else tuple(objectives),
        }
        return cls(**values).checked()

    def checked(self) -> RunOptions:
        """These options, checked and completed (session5's one fold, a smoke test's tiny budget)."""
        for name, value in (
            ("--num-samples", self.num_samples),
            ("--cpus-per-trial", self.cpus_per_trial),
            ("--max-concurrent", self.max_concurrent),
        ):
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        folds = list(self.folds)
        if any(f not in SESSIONS for f in folds):
            raise ConfigError(f"--folds must be among {SESSIONS}, got {folds}")
        if len(set(folds)) < len(folds):
            raise ConfigError(f"--folds names a session twice: {folds}")
        options = self
        if self.protocol == "session5":
            if folds not in (list(SESSIONS), [5]):
                raise ConfigError(f"--protocol session5 has one fold (test Session 5); --folds {folds} does not apply")
            options = replace(options, folds=(5,))  # one fold: train on Sessions 1-4, test on Session 5
        check_local_resources(self)
        if self.inner_folds is not None:
            if self.protocol != "loso":
                raise ConfigError(f"--inner-folds applies to the nested protocol loso, not --protocol {self.protocol}")
            if not 1 <= self.inner_folds <= len(SESSIONS) - 1:
                raise ConfigError(f"--inner-folds must be 1..{len(SESSIONS) - 1}, got {self.inner_folds}")
        parse_overrides(self.overrides)
        options = replace(options, mlflow=check_mlflow(self.mlflow))
        if self.smoke_test:  # 1 fold, 2 trials, 1 inner fold (idempotent: a checked spec checks again)
            options = replace(
                options,
                num_samples=min(options.num_samples, 2),
                folds=options.folds[-1:],
                inner_folds=1 if options.protocol == "loso" else None,
            )
        return options


def check_local_resources(options: RunOptions) -> None:
    """A trial that asks a new local Ray instance for more than this machine has would wait for ever."""
    if options.address or os.environ.get("RAY_ADDRESS"):
        return  # a cluster: its nodes, not this machine, hold the resources (autoscaling may add them)
    cpus = os.cpu_count() or 1
    if options.cpus_per_trial > cpus:
        raise ConfigError(f"--cpus-per-trial {options.cpus_per_trial:g}: this machine has {cpus} CPUs")
    if options.gpus_per_trial:
        import torch

        gpus = torch.cuda.device_count()
        if options.gpus_per_trial > gpus:
            raise ConfigError(
                f"--gpus-per-trial {options.gpus_per_trial:g}: this machine has {gpus} GPU(s) "
                "(join a cluster with --address to use others)"
            )


def check_run_name(name: str | None) -> str | None:
    """A run name is one folder name in the storage (``--name ../x`` would write outside it)."""
    if name is not None and not RUN_NAME.fullmatch(name):
        raise ConfigError(f"--name {name!r}: use letters, digits and . _ - (one folder name in the storage)")
    return name


@dataclass(frozen=True)
class Budget:
    """A named search and final-stage budget: what a benchmark fills in where its flags are not given."""

    name: str
    num_samples: int  # trials per pair (and test fold, nested)
    seeds: int  # seeds per final config
    inner_folds: int | None = None  # nested loso: inner folds per outer fold (None: all four)
    overrides: tuple[str, ...] = ()  # ``--set`` items put before the user's own
    why: str = ""


# Demo-sized budget: <= 10 minutes for the 2x2 grid and its baselines on 2 CPU cores. Frozen pretrained
# encoders (fine-tuning a 94 M-parameter model on CPU takes hours), fewer epochs, short explanations; nested
# selection compares each outer fold's configs on two of its four inner folds (the full benchmark uses four).
# Learning rate and batch size are fixed, not searched: an inner fold of the demo corpus trains on ~180
# utterances, so 8 epochs at batch 32-64 were ~40 steps, and the low end of the searched rate (1e-4) then
# learns nothing; with 2 trials per fold, that was a coin toss per session (its report decided nothing).
DEMO_BUDGET = Budget(
    "demo",
    num_samples=2,
    seeds=2,
    inner_folds=2,
    overrides=(
        "epochs=6",
        "patience=3",
        "batch_size=16",
        "lr=0.003",
        "audio.finetune=layers",  # frozen (with 0 layers): a large encoder's fragment searches LoRA otherwise,
        "audio.finetune_layers=0",  # and a LoRA trial of whisper_small ran its backbone for minutes per epoch
        "text.finetune=layers",
        "text.finetune_layers=0",
        "explain_samples=6",  # the same 6 utterances per fold for every pair (60 on IEMOCAP)
        "explain_steps=8",
        "explain_level=head_level",  # frozen backbones explained at the head; end to end takes minutes on CPU
        "latency_repeats=3",  # 30 repeats would double the demo
        "latency_all_lengths=false",  # the 4-s input only: a 94 M-parameter backbone's 10-s calls cost minutes
    ),
    why="the demo corpus with no budget flags: about 10 minutes on 2 CPU cores",
)
FULL_BUDGET = Budget("full", num_samples=8, seeds=5, why="the defaults of a real benchmark")
BUDGETS = {b.name: b for b in (DEMO_BUDGET, FULL_BUDGET)}


def parse_grid(items: list[str] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``--grid audio=cnn_bilstm,whisper text=bilstm,albert`` -> ((modality, encoders), ...)."""
    grid = []
    for item in items or []:
        modality, sep, names = item.partition("=")
        encoders = tuple(n.strip() for n in names.split(",") if n.strip())
        if not sep or not encoders or modality not in ("audio", "text"):
            raise ConfigError(f"--grid expects MODALITY=ENCODER[,ENCODER...] (audio or text), got {item!r}")
        grid.append((modality, encoders))
    if len({m for m, _ in grid}) < len(grid):
        raise ConfigError(f"--grid names a modality twice: {' '.join(items or [])}")
    return tuple(grid)


def grid_pairs(grid: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    """The pairs of a ``--grid``: every audio x text pair and each encoder's unimodal baseline, composed
    (and registered) from the encoder registry by ``harness.models.pairs.compose_grid``."""
    from harness.models.pairs import compose_grid

    encoders = dict(grid)
    return tuple(compose_grid(encoders.get("audio", ()), encoders.get("text", ())))


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: every pair searched at one budget, then the final stage of each pair's top configs."""

    run: RunOptions
    pairs: tuple[str, ...]
    budget: Budget
    seeds: int
    top_k: int = 1
    select: str = "best"  # harness.tune.selection.SELECTIONS
    margin: float = DEFAULT_MARGIN
    cost: str = "latency_4s_ms"
    name: str = "bench"
    grid: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())  # ``--grid``, as given (pairs hold its pairs)

    @property
    def demo_budget(self) -> bool:
        return self.budget.name == DEMO_BUDGET.name

    @classmethod
    def from_args(cls, args: argparse.Namespace, source: str) -> BenchmarkSpec:
        """The spec of ``harness benchmark``'s command line, for corpus ``source`` ("demo" or a path): on the
        demo corpus with no budget flag (and not a smoke test, whose tiny budget it would override), the demo
        budget; otherwise the full one, where a flag does not say otherwise."""
        from harness.models.pairs import GRID, PAIRS, get_pair

        flags = args.num_samples is not None or args.seeds is not None
        budget = DEMO_BUDGET if source == "demo" and not flags and not args.smoke_test else FULL_BUDGET
        inner = args.inner_folds
        if inner is None and args.protocol == "loso":
            inner = budget.inner_folds
        run = RunOptions.from_args(
            args,
            num_samples=args.num_samples if args.num_samples is not None else budget.num_samples,
            overrides=(*budget.overrides, *args.overrides),
            inner_folds=inner,
        )
        grid = parse_grid(getattr(args, "grid", None))
        if grid and args.pairs:
            raise ConfigError("--grid and --pairs: name the pairs one way")
        if grid:
            pairs = grid_pairs(grid)
        else:
            default = GRID if source == "demo" and not args.pairs and not flags else PAIRS
            pairs = tuple(get_pair(p).name for p in (args.pairs or list(default)))
        spec = cls(
            run,
            pairs,
            budget,
            seeds=args.seeds if args.seeds is not None else budget.seeds,
            top_k=args.top_k,
            select=args.select,
            margin=args.margin,
            cost=args.cost,
            name=args.name,
            grid=grid,
        )
        return spec.checked()

    def checked(self) -> BenchmarkSpec:
        check_run_name(self.name)
        if self.seeds <= 0 or self.top_k <= 0:
            raise ConfigError(f"--seeds and --top-k must be > 0, got {self.seeds} and {self.top_k}")
        if self.top_k > self.run.num_samples:
            raise ConfigError(f"--top-k {self.top_k} is more than the {self.run.num_samples} trials searched per pair")
        return self

    @property
    def final(self) -> dict[str, Any]:
        """What makes a final stage the one it is (stored in its books: a rerun with other values is refused)."""
        rule = {"select": f"{self.select} {self.margin:g} {self.cost}"} if self.select != "best" else {}
        return {"seeds": self.seeds, "top_k": self.top_k} | rule

    def describe(self) -> str:
        """The budget for the report, as run (a smoke test has fewer trials and folds)."""
        run = self.run
        if run.protocol == "loso":
            inner = f"{run.inner_folds} of 4" if run.inner_folds else "4"
            search = f"{run.num_samples} trials per pair and test fold, each on {inner} inner folds (nested)"
        elif run.protocol == "loso-flat":
            search = f"{run.num_samples} trials per pair, on every fold (non-nested)"
        elif run.protocol in PRESETS:
            search = (
                f"{run.num_samples} trials per pair and test fold, each on that fold's own validation set "
                f"(PRESET {run.protocol}, never ranked with honest runs)"
            )
        else:
            search = f"{run.num_samples} trials per pair"
        rule = "" if self.select == "best" else f" (the cheapest by {self.cost} within {self.margin:g} wF1 of the best)"
        objectives = "" if len(run.objectives) == 1 else f", objectives {','.join(run.objectives)}"
        demo = ""
        if self.demo_budget:
            demo = f"; demo budget: {' '.join(self.budget.overrides)}, {self.budget.inner_folds} inner folds"
        return (
            f"{search}, Optuna TPE + ASHA on {run.fidelity}{objectives}, test folds {list(run.folds)}; final stage: "
            f"top {self.top_k} config(s){rule} per test fold x {self.seeds} seeds{demo}"
        )
