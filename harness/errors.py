"""The one base class of user-facing errors: the CLI prints ``error: <message>`` and exits with 2
(``harness.cli.common.run_command``, the one wrapper every command runs in).

Not a ``ValueError``: an internal ``ValueError`` is a bug and keeps its traceback; only what the user can
fix is printed as one line."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a path, a corpus file, a config value, a pair name): the message says what and where."""
