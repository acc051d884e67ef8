"""One logging setup for every command-line entry point, and the run's log file.

The console gets the harness's own lines (one per finished trial, one per stage, warnings a user must act
on or know about). What Ray and Optuna say about their own workings goes to a log file named at the
start (``start_log_file``), with everything the console showed: Ray's "Checkpoint successfully created"
per fold and trial (said in the trial's worker, routed there by ``setup_worker_logging``, which Ray runs
in each worker process), its token-authentication notice, and Optuna's "A new study created" line.
Their warnings and errors still reach the console, except the token-authentication notice, which is
about how Ray is set up rather than about the run.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UserError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_VARIABLE = "HARNESS_LOG_FILE"  # the file, for Ray workers (they inherit or are given it)
# Loggers whose INFO lines go to the log file only; their warnings also reach the console.
QUIET = ("ray.tune", "ray.train", "optuna")
# Loggers that go to the log file only, warnings included.
FILE_ONLY = ("ray._private.authentication",)
_file_handler: logging.FileHandler | None = None


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S")
    for noisy in ("urllib3", "filelock", "numba", "matplotlib", "httpx", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)


def log_file_path(folder: str | Path, command: str, name: str) -> Path:
    """``FOLDER/logs/COMMAND_NAME_YYYYmmdd-HHMMSS.log``: one file per command run, never overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(folder) / "logs" / f"{command}_{name}_{stamp}.log"


def start_log_file(path: Path) -> Path:
    """Send every log line to ``path`` from now on, and the noisy libraries' lines there only; says where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    global _file_handler
    if _file_handler is not None:  # a command run again in one process (tests) logs to its new file only
        logging.getLogger().removeHandler(_file_handler)
        _file_handler.close()
    _file_handler = handler
    logging.getLogger().addHandler(handler)
    _quiet_optuna()
    route(handler, console=True)
    os.environ[LOG_FILE_VARIABLE] = str(path)
    logging.getLogger(__name__).info("log file (Ray's and Optuna's own lines too): %s", path)
    return path


def route(handler: logging.Handler, console: bool) -> None:
    """The noisy loggers write to ``handler``, and (with ``console``) their warnings to the console."""
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
    stream.setLevel(logging.WARNING)
    for name in QUIET + FILE_ONLY:
        logger = logging.getLogger(name)
        logger.handlers = [handler] + ([stream] if console and name in QUIET else [])
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _quiet_optuna() -> None:
    try:
        import optuna
    except ImportError:
        return
    optuna.logging.disable_default_handler()  # its own stderr handler; "optuna" is routed like Ray's


def setup_worker_logging() -> None:
    """Run by Ray in each worker process (``worker_process_setup_hook``): Ray Train's per-checkpoint lines
    go to the run's log file when this node can write it, else nowhere; warnings still reach the driver."""
    target = os.environ.get(LOG_FILE_VARIABLE)
    handler: logging.Handler = logging.NullHandler()
    if target and Path(target).parent.is_dir():
        try:
            handler = logging.FileHandler(target, encoding="utf-8")
            handler.setFormatter(
                logging.Formatter(
                    f"%(asctime)s %(levelname)s pid {os.getpid()} %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"
                )
            )
        except OSError:
            pass
    route(handler, console=True)


def ray_runtime_env(worker_env: dict[str, str]) -> dict[str, Any]:
    """``ray.init``'s ``runtime_env``: the environment workers need (``worker_env`` plus the log file's name;
    a local instance inherits it anyway, a cluster's workers do not) and the workers' logging setup."""
    env = dict(worker_env)
    if os.environ.get(LOG_FILE_VARIABLE):
        env[LOG_FILE_VARIABLE] = os.environ[LOG_FILE_VARIABLE]
    return {"env_vars": env, "worker_process_setup_hook": f"{__name__}.setup_worker_logging"}


def log_folder(storage: str, results: str | Path) -> Path:
    """Where a command's log file goes: the storage root when it is a local folder (beside the runs it
    logs), else (an object store, which a log handler cannot append to) the results folder."""
    if "://" not in storage:
        return Path(storage)
    if storage.startswith("file://"):
        return Path(urlsplit(storage).path)
    return Path(results)


def start_run_log(storage: str, results: str | Path, command: str, name: str) -> Path:
    """``start_log_file`` in ``log_folder``: what a command calls once its storage is known."""
    return start_log_file(log_file_path(log_folder(storage, results), command, name))


def check_mlflow(uri: str | None) -> str | None:
    """``--mlflow URI`` checked before Ray: MLflow installed, a local store's folder there; returns the URI
    as MLflow gets it (a plain path made absolute: Ray's driver may run elsewhere than the shell)."""
    if uri is None:
        return None
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise UserError(f"--mlflow {uri}: MLflow is not installed (pip install 'harness[mlflow]')")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return Path(uri).expanduser().resolve().as_uri()
    if scheme == "sqlite":  # sqlite:///relative.db or sqlite:////absolute/path.db
        path = Path(rest[1:]).expanduser().resolve()
        if not path.parent.is_dir():
            raise UserError(f"--mlflow {uri}: the folder {path.parent} does not exist")
        return f"sqlite:///{path}"
    return uri
