"""Credentials never reach a run file, a log line or a message.

A user may give a password inside a URL (``--optuna-storage postgresql://alice:PASSWORD@db/optuna``,
``--storage s3://KEY:SECRET@bucket``, ``--mlflow https://user:token@host``) or as a query parameter
(``?password=...``, ``?secret_key=...``). Everything the harness writes that can carry a command line or a
URL (the run lock and lease, log files, report headers, error lines) goes through ``mask_secrets``.
``SecretFilter`` does it for every log record a handler emits.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host (the user name stays: it says whose database)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)(?P<secret>[^\s/]+)(?=@)")
# ?password=... &token=... (query parameters and KEY=VALUE words whose name says secret)
_PARAM = re.compile(
    r"(?P<head>(?:^|[?&;\s])[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)"
    r"[A-Za-z0-9_.-]*=)(?P<secret>[^\s&;]+)",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """``text`` with every password in a URL's user part and every secret-named parameter replaced by ***."""
    text = _USERINFO.sub(lambda m: m["head"] + MASK, text)
    return _PARAM.sub(lambda m: m["head"] + MASK, text)


def mask_argv(argv: list[str]) -> str:
    """A command line for a lock, a lease or a header, with its secrets masked."""
    return mask_secrets(" ".join(argv))


class SecretFilter(logging.Filter):
    """A handler's filter that masks secrets in the formatted message (arguments folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
