"""The one base class of user-facing errors: the CLI prints ``error: <message>`` and exits with 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input (a path, a corpus file, a config value, a pair name): the message says what and where."""
