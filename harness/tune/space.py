"""Search spaces: one YAML per pair, validated in one place before Ray starts.

    include: [_base.yaml, _wav2vec2.yaml]   # optional; merged first in order, this file wins
    fixed:  {epochs: 30, audio.finetune_layers: 0}
    search:
      lr:          {type: loguniform, low: 1.0e-4, high: 3.0e-3}
      text.hidden: {type: int, low: 64, high: 256, step: 64}
      fusion:      {type: categorical, choices: [concat, gated, attention]}
      encoder_lr:  {type: loguniform, low: 1.0e-5, high: 1.0e-4, when: {audio.finetune_layers: [2, 4]}}

Keys are ``TrialConfig`` fields. ``when`` makes a parameter conditional on values sampled (or fixed) before it:
a mapping holds when every key has one of its values; a list of mappings holds when any of them does
("either encoder fine-tuned"):

      encoder_lr: {type: loguniform, low: 1.0e-5, high: 1.0e-4,
                   when: [{audio.finetune_layers: [2, 4]}, {text.finetune_layers: [1]}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import safe_yaml
from harness.config import ConfigError, TrialConfig, check_value, did_you_mean, flat_keys, key_type

PARAM_TYPES = ("float", "loguniform", "int", "categorical")
_PARAM_KEYS = {"type", "low", "high", "step", "choices", "when"}
MAX_SPACE_BYTES = 1_000_000  # the largest space here is under 2 kB


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    low: float = 0.0  # numeric types only
    high: float = 0.0
    step: float | None = None
    choices: tuple = ()
    when: dict[str, tuple] = field(default_factory=dict)  # every key has one of its values
    when_any: tuple[dict[str, tuple], ...] = ()  # ``when: [...]``: one of these mappings holds

    def active(self, values: dict[str, Any]) -> bool:
        def holds(condition: dict[str, tuple]) -> bool:
            return all(values.get(key) in allowed for key, allowed in condition.items())

        return holds(self.when) and (not self.when_any or any(holds(c) for c in self.when_any))

    def suggest(self, trial: Any) -> Any:
        """Sample with an Optuna trial (define-by-run)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1))
        return trial.suggest_float(
            self.name,
            self.low,
            self.high,
            log=self.type == "loguniform",
            step=self.step if self.type == "float" else None,
        )

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def distribution(self) -> Any:
        """The Optuna distribution ``suggest`` samples from (to rebuild a study from stored trials)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), step=int(self.step or 1))
        return FloatDistribution(
            self.low, self.high, log=self.type == "loguniform", step=self.step if self.type == "float" else None
        )


@dataclass(frozen=True)
class SearchSpace:
    path: str
    fixed: dict[str, Any]
    params: tuple[Param, ...]

    def sample(self, trial: Any) -> dict[str, Any]:
        values = dict(self.fixed)
        for param in self.params:
            if param.active(values):
                values[param.name] = param.suggest(trial)
        return values

    def config(self, values: dict[str, Any]) -> TrialConfig:
        return TrialConfig.from_flat(self.fixed | values, where=self.path)

    def with_fixed(self, overrides: dict[str, Any]) -> SearchSpace:
        """Fix values (``--set``), removing them from the searched parameters."""
        TrialConfig.from_flat(self.fixed | overrides, where="--set")
        return SearchSpace(self.path, self.fixed | overrides, tuple(p for p in self.params if p.name not in overrides))

    def possible_values(self, key: str) -> list[Any]:
        """Every value ``key`` can take (for feature pre-extraction)."""
        for param in self.params:
            if param.name == key:
                if param.type == "categorical":
                    return list(param.choices)
                if param.type == "int":
                    return list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))
        return [self.config({}).flat()[key]]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} written twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, including: tuple[Path, ...] = ()) -> dict[str, dict[str, tuple[Any, Path]]]:
    """``{"fixed": {key: (value, file)}, "search": {key: (spec, file)}}`` of ``path`` and its includes,
    merged in order (a later file wins; fixing a key an included file searches fixes it, and the other way
    round). A key both fixed and searched in one file is an error, as is an include cycle."""
    if path.resolve() in including:
        cycle = " -> ".join(p.name for p in (*including, path.resolve()))
        raise ConfigError(f"{path}: include cycle ({cycle})")
    try:
        size = path.stat().st_size
        if size > MAX_SPACE_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; a search space file holds at most {MAX_SPACE_BYTES:,}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: search space file not found") from None
    except OSError as err:  # a folder, no permission
        raise ConfigError(f"{path}: cannot read the search space file ({err.strerror})") from None
    # Bytes decoded strictly, nesting and alias expansion bounded before anything is built, tags refused.
    data = safe_yaml.load(safe_yaml.decode(raw, str(path)), str(path), loader=_UniqueKeyLoader)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'fixed' and/or 'search'")
    unknown = set(data) - {"include", "fixed", "search"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected include, fixed, search")
    includes = data.get("include") or []
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: 'include' takes a file name or a list of file names")
    for key in ("fixed", "search"):
        if not isinstance(data.get(key) or {}, dict):
            raise ConfigError(f"{path}: '{key}' must be a mapping of config keys")
    both = set(data.get("fixed") or {}) & set(data.get("search") or {})
    if both:
        raise ConfigError(f"{path}: {sorted(both)} both fixed and searched; keep one")
    merged: dict[str, dict[str, tuple[Any, Path]]] = {"fixed": {}, "search": {}}
    parts = [_read_yaml(path.parent / name, (*including, path.resolve())) for name in includes]
    parts.append({key: {k: (v, path) for k, v in (data.get(key) or {}).items()} for key in ("fixed", "search")})
    for part in parts:
        for key, other in (("fixed", "search"), ("search", "fixed")):
            for name, entry in part[key].items():
                merged[key][name] = entry
                merged[other].pop(name, None)
    return merged


def _param(path: Path, name: str, spec: Any) -> Param:
    where = f"{path}: search.{name}"
    if name not in flat_keys():
        raise ConfigError(f"{path}: unknown key {name!r}{did_you_mean(name, flat_keys())}")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"{where}: needs 'type', one of {PARAM_TYPES}")
    if spec["type"] not in PARAM_TYPES:
        raise ConfigError(f"{where}: unknown type {spec['type']!r}, expected one of {PARAM_TYPES}")
    extra = set(spec) - _PARAM_KEYS
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {sorted(extra)}")
    raw_when = {} if spec.get("when") is None else spec["when"]
    if isinstance(raw_when, list):  # any of these mappings
        if not raw_when or not all(isinstance(c, dict) and c for c in raw_when):
            raise ConfigError(f"{where}: 'when' takes a mapping, or a non-empty list of mappings (any of them)")
        when, when_any = {}, tuple(_condition(where, c) for c in raw_when)
    elif isinstance(raw_when, dict):
        when, when_any = _condition(where, raw_when), ()
    else:
        raise ConfigError(f"{where}: 'when' takes a mapping, or a list of mappings (any of them)")
    if spec["type"] == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: categorical needs a non-empty 'choices' list")
        return Param(name, "categorical", choices=tuple(choices), when=when, when_any=when_any)
    low, high = spec.get("low"), spec.get("high")
    if (
        not (isinstance(low, (int, float)) and isinstance(high, (int, float)))
        or isinstance(low, bool)
        or isinstance(high, bool)
        or not low < high
    ):
        raise ConfigError(f"{where}: needs numeric 'low' < 'high', got low={low!r} high={high!r}")
    if spec["type"] == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0")
    # The bounds pass the check every config value passes (range, finiteness); an integer key is searched
    # as type int (a float search would sample values the trial's config refuses).
    if key_type(name) not in (int, float):
        raise ConfigError(f"{where}: {name} is not a number; search it as type categorical")
    if key_type(name) is int and spec["type"] != "int":
        raise ConfigError(f"{where}: {name} takes integers; use type int (or categorical)")
    check_value(name, low, f"{where}: low")
    check_value(name, high, f"{where}: high")
    if spec["type"] == "int" and not all(float(v).is_integer() for v in (low, high, spec.get("step") or 1)):
        raise ConfigError(f"{where}: type int needs whole low, high and step, got low={low!r} high={high!r}")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or spec["type"] == "loguniform":
            raise ConfigError(f"{where}: 'step' must be a number > 0 (int and float types only), got {step!r}")
        if abs(round((high - low) / step) * step - (high - low)) > 1e-9 * max(1.0, abs(high)):
            raise ConfigError(f"{where}: high - low = {high - low:g} is not a multiple of step {step:g}")
    return Param(name, spec["type"], float(low), float(high), step, when=when, when_any=when_any)


def _condition(where: str, mapping: dict) -> dict[str, tuple]:
    """One ``when`` mapping: each key a config key, its value one allowed value or a list of them."""
    condition = {}
    for key, allowed in mapping.items():
        if key not in flat_keys():
            raise ConfigError(f"{where}: 'when' names unknown key {key!r}{did_you_mean(key, flat_keys())}")
        condition[key] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
    return condition


def _sample_order(path: Path, params: list[Param]) -> tuple[Param, ...]:
    """The parameters in file order, except that each comes after the searched keys its ``when`` reads (an
    included file's parameter redefined by a later file keeps its first place, which may precede them)."""
    names = {p.name for p in params}
    ordered: list[Param] = []
    pending = list(params)
    while pending:
        placed = {p.name for p in ordered}
        ready = next(
            (p for p in pending if ({k for c in (p.when, *p.when_any) for k in c} & names) - {p.name} <= placed), None
        )
        if ready is None:
            cycle = ", ".join(p.name for p in pending)
            raise ConfigError(f"{path}: the 'when' conditions of {cycle} depend on each other")
        ordered.append(ready)
        pending.remove(ready)
    return tuple(ordered)


def load_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    data = _read_yaml(path)
    fixed = {name: value for name, (value, _) in data["fixed"].items()}
    params = _sample_order(path, [_param(origin, name, spec) for name, (spec, origin) in data["search"].items()])
    space = SearchSpace(str(path), fixed, params)
    # Every fixed value and every choice must make a valid TrialConfig.
    space.config({})
    for param in params:
        for choice in param.choices:
            space.config({param.name: choice})
    return space
