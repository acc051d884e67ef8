"""YAML from a user, read so that a bad file is one ``ConfigError`` line and never a traceback or a hang.

What can go wrong, and where it is stopped:

- bytes that are not UTF-8 (a binary or Latin-1 file): decoded strictly, the error names the line and byte;
- nesting too deep for the recursive constructor (``RecursionError``), and an alias bomb ("billion laughs":
  a few lines whose aliases expand to billions of nodes, which a ``repr`` in an error message, ``json.dumps``
  or a walk over the value would try to build): both are measured on PyYAML's event stream, which its
  parser produces without recursion and without building anything, before any object is constructed;
- tags such as ``!!python/object``: the safe loader refuses them (``ConstructorError``), reported as one line.
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.config import ConfigError

MAX_DEPTH = 32  # a search space nests three levels; a config value none
MAX_NODES = 100_000  # nodes after alias expansion; every search space here has a few hundred


def decode(raw: bytes, where: str) -> str:
    """``raw`` as UTF-8 text (a BOM dropped), or a ``ConfigError`` naming the line and byte that are not."""
    try:
        return raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{where}:{line}: not UTF-8 text (byte {raw[err.start : err.start + 1]!r} at offset {err.start}); "
            "save the file as UTF-8"
        ) from None


def check_shape(text: str, where: str, lines: bool = True) -> None:
    """Refuse YAML nested deeper than ``MAX_DEPTH`` or expanding to more than ``MAX_NODES`` nodes, from the
    event stream alone (nothing is constructed)."""
    depth = 0
    total = 0
    sizes: dict[str, int] = {}  # anchor -> expanded nodes of the anchored node
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, total when the collection started)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{_at(where, event, lines)}: nested more than {MAX_DEPTH} levels deep")
                total += 1
                open_nodes.append((event.anchor, total))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                anchor, started = open_nodes.pop()
                if anchor is not None:
                    sizes[anchor] = total - started + 1
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                total += sizes.get(event.anchor or "", 1)
            if total > MAX_NODES:
                raise ConfigError(
                    f"{_at(where, event, lines)}: expands to more than {MAX_NODES:,} values (aliases of aliases?); "
                    "write the values out"
                )
    except yaml.YAMLError as err:
        raise yaml_error(err, where, lines) from None


def load(text: str, where: str, loader: type = yaml.SafeLoader, lines: bool = True) -> Any:
    """Parse ``text`` with a safe ``loader`` after ``check_shape``; any YAML problem is one ``ConfigError``
    naming ``where`` (and the line, with ``lines``: a file rather than a ``--set`` value)."""
    check_shape(text, where, lines)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise yaml_error(err, where, lines) from None


def yaml_error(err: yaml.YAMLError, where: str, lines: bool = True) -> ConfigError:
    """One line: the file (and line) and PyYAML's own word for what is wrong."""
    mark = getattr(err, "problem_mark", None)
    at = f"{where}:{mark.line + 1}" if lines and mark is not None else where
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return ConfigError(f"{at}: invalid YAML ({' '.join(str(problem).split())})")


def _at(where: str, event: yaml.Event, lines: bool) -> str:
    mark = event.start_mark
    return f"{where}:{mark.line + 1}" if lines and mark is not None else where
