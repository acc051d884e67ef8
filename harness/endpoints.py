"""Every network endpoint a command is given is asked once, with a timeout, before Ray starts.

Without it an unreachable endpoint hangs where it is first used: pyarrow's GCS client retries for tens of
minutes on ``--storage gs://...`` with no network (and holds SIGINT meanwhile), ``ray.init`` waits for
minutes on an ``--address`` where nothing answers, and an RDB ``--optuna-storage`` blocks in its driver.
Each probe here answers in at most ``TIMEOUT_S`` with one line saying what to check; a probe that cannot
tell (e.g. no credentials needed to connect) lets the command go on.

An object-store probe runs in a child process: pyarrow's clients block in C++ and cannot be interrupted
from Python, but a child can be killed when its time is up (and Ctrl-C reaches it too).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from urllib.parse import urlsplit

from harness.errors import UserError
from harness.redact import mask_secrets

TIMEOUT_S = 15.0
_LOCAL_SCHEMES = ("", "file", "local", "mock")

_PROBE_STORAGE = """
import sys
import pyarrow.fs as pafs
fs, path = pafs.FileSystem.from_uri(sys.argv[1])
fs.get_file_info(path)
"""


class UnreachableEndpoint(UserError):
    """A storage, cluster or study database that does not answer."""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def probe_storage(uri: str, timeout_s: float = TIMEOUT_S, flag: str = "--storage") -> None:
    """A URI storage (``s3://``, ``gs://``, ``hdfs://``...) answers a listing of its root within
    ``timeout_s``; local paths and ``file://`` are checked by the caller (writability)."""
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme in _LOCAL_SCHEMES:
        return
    shown = mask_secrets(uri)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_STORAGE, uri],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise UnreachableEndpoint(
            f"{flag} {shown}: no answer within {timeout_s:.0f} s (is there a network route to it, and "
            "credentials in the environment?); nothing was started"
        ) from None
    if done.returncode != 0:
        raise UnreachableEndpoint(f"{flag} {shown}: not usable ({mask_secrets(_first_line(done.stderr))})")


def _connect(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to host:port opens within ``timeout_s``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer within {timeout_s:.0f} s"
    except ConnectionRefusedError:
        return "connection refused (nothing listens there)"
    except socket.gaierror as err:
        return f"unknown host ({err.strerror})"
    except OSError as err:
        return err.strerror or str(err)


def probe_ray_address(address: str | None, timeout_s: float = TIMEOUT_S) -> None:
    """``--address HOST:PORT`` (or ``ray://HOST:PORT``) answers a TCP connection; ``auto`` and ``local``
    are left to Ray, which finds a local cluster or says there is none."""
    if not address or address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit():
        raise UnreachableEndpoint(f"--address {mask_secrets(address)}: expected HOST:PORT, e.g. 10.0.0.5:6379")
    why = _connect(host.strip("[]"), int(port_text), timeout_s)
    if why:
        raise UnreachableEndpoint(
            f"--address {mask_secrets(address)}: {why}; start the head with `ray start --head` there, or "
            "leave --address out for a local Ray instance"
        )


def probe_optuna_storage(url: str | None, timeout_s: float = TIMEOUT_S) -> None:
    """An RDB ``--optuna-storage`` URL parses and its server accepts a TCP connection (SQLite: the folder
    exists). The password, if any, is never shown."""
    if not url:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_secrets(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise UnreachableEndpoint(
            f"--optuna-storage {shown}: not a database URL (e.g. postgresql://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite" or parsed.host is None:
        return
    default_ports = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
    port = parsed.port or default_ports.get(parsed.get_backend_name())
    if port is None:
        return
    why = _connect(parsed.host, port, timeout_s)
    if why:
        raise UnreachableEndpoint(f"--optuna-storage {shown}: {why}")


def probe_endpoints(storage: str | None, address: str | None, optuna_url: str | None) -> None:
    """All three, in the order a run would meet them."""
    probe_ray_address(address)
    probe_optuna_storage(optuna_url)
    if storage:
        probe_storage(storage)
