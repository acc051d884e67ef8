"""One logging setup for every command-line entry point, and the run's log file.

The console gets the harness's own lines (one per finished trial, one per stage, warnings a user must act
on or know about). What Ray and Optuna say about their own workings goes to a log file named at the
start (``start_log_file``), with everything the console showed: Ray's "Checkpoint successfully created"
per fold and trial (said in the trial's worker, routed there by ``setup_worker_logging``, which Ray runs
in each worker process), its token-authentication notice, and Optuna's "A new study created" line.
Their warnings and errors still reach the console, except the token-authentication notice, which is
about how Ray is set up rather than about the run, Ray Tune's timing warnings ("... may be a performance
bottleneck") and its own "Resume experiment with: Tuner.restore(...)" hint (the harness prints how to
resume: the same command again), which go to the file only. Python warnings (FutureWarning and the
like) go to the file too, not nowhere. No third-party progress bars (transformers' "Writing model
shards", the Hub's downloads) and no raw colour codes in worker lines when the console is not a terminal.

Verbosity (``harness -v`` / ``-q``, or ``HARNESS_VERBOSITY`` = 1 / -1): ``-q`` shows warnings and errors
only; ``-v`` adds the harness's debug lines, Ray's and Optuna's own info lines and Python warnings.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UserError
from harness.redact import SecretFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FOLDER = "logs"  # under the storage root, beside the runs (the run loader skips it)
LOG_FILE_VARIABLE = "HARNESS_LOG_FILE"  # the file, for Ray workers (they inherit or are given it)
VERBOSITY_VARIABLE = "HARNESS_VERBOSITY"  # -1 quiet, 0 default, 1 verbose (``harness -q`` / ``-v``)
# Loggers whose INFO lines go to the log file only; their warnings also reach the console.
QUIET = ("ray.tune", "ray.train", "optuna")
# Loggers that go to the log file only, warnings included.
FILE_ONLY = ("ray._private.authentication", "py.warnings")
# Console lines of the QUIET loggers that go to the file only: Ray Tune's timing warnings and its resume
# hint (the harness says how to resume: run the same command again).
# Ray's "Trial task failed" carries the worker's whole traceback: the harness prints its own one line per
# failed trial (harness.tune.ray_search.TrialLog), so the traceback goes to the log file and error.txt only.
FILE_ONLY_MESSAGES = (
    "may be a performance bottleneck",
    "Resume experiment with:",
    "Resume training with:",
    "Trial task failed for trial",
    "No space left on device",  # a full storage disk: the harness stops the run and says so in one line
    "database or disk is full",
)
_file_handler: logging.FileHandler | None = None


def verbosity() -> int:
    """-1 (``-q``), 0 or 1 (``-v``), from ``HARNESS_VERBOSITY`` (workers inherit it)."""
    try:
        return max(-1, min(1, int(os.environ.get(VERBOSITY_VARIABLE, "0"))))
    except ValueError:
        return 0


def set_verbosity(level: int) -> None:
    os.environ[VERBOSITY_VARIABLE] = str(max(-1, min(1, level)))


class ConsoleFilter(logging.Filter):
    """Drops the lines the console never shows (``FILE_ONLY_MESSAGES``); the log file keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:  # Ray logs a failed save with its exception
            message += f" {record.exc_info[1]}"
        return not any(text in message for text in FILE_ONLY_MESSAGES)


def quiet_libraries() -> None:
    """No third-party progress bars and no raw colour codes in worker lines off a terminal; set before
    transformers and the Hub are imported (they read the variable once), and switched off where they
    already are. Ray workers inherit the variables."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow the Hub's switch
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def setup_logging(verbose: bool = False) -> None:
    level = verbosity() if not verbose else 1
    logging.basicConfig(
        level=logging.DEBUG if level > 0 else logging.INFO, format=FORMAT, datefmt="%H:%M:%S", force=False
    )
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if level > 0 else logging.INFO)
    for handler in root.handlers:  # the console: warnings only with -q
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING if level < 0 else logging.NOTSET)
            if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())  # a password in a URL never reaches a log line
    for noisy in ("urllib3", "filelock", "numba", "matplotlib", "httpx", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_libraries()
    logging.captureWarnings(True)  # warnings become log records: the file keeps them, -v shows them
    warnings_logger = logging.getLogger("py.warnings")
    if level <= 0 and _file_handler is None:
        warnings_logger.handlers, warnings_logger.propagate = [logging.NullHandler()], False


def log_file_path(folder: str | Path, command: str, name: str) -> Path:
    """``FOLDER/logs/COMMAND_NAME_YYYYmmdd-HHMMSS.log``: one file per command run, never overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(folder) / LOG_FOLDER / f"{command}_{name}_{stamp}.log"


def start_log_file(path: Path) -> Path:
    """Send every log line to ``path`` from now on, and the noisy libraries' lines there only; says where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    handler.addFilter(SecretFilter())
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
    # A log file on a disk that filled must not print "--- Logging error ---" tracebacks: the run stops with
    # one line saying the disk is full (issue 30). Python's documented setting for production.
    logging.raiseExceptions = False
    level = verbosity()
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
    stream.setLevel(logging.INFO if level > 0 else logging.WARNING)
    stream.addFilter(ConsoleFilter())
    stream.addFilter(SecretFilter())
    handler.addFilter(SecretFilter())
    for name in QUIET + FILE_ONLY:
        logger = logging.getLogger(name)
        shown = console and (name in QUIET or (level > 0 and name == "py.warnings"))
        logger.handlers = [handler] + ([stream] if shown else [])
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
    quiet_libraries()
    logging.captureWarnings(True)
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


MLFLOW_DB = "mlflow.db"  # --mlflow FOLDER: MLflow's SQLite store in it


def check_mlflow(uri: str | None) -> str | None:
    """``--mlflow URI`` checked before Ray: MLflow installed, a local store's folder there; returns the URI
    as MLflow gets it. A folder (a plain path or ``file://``) becomes the SQLite store ``FOLDER/mlflow.db``:
    MLflow 3 keeps its file store in maintenance mode and refuses to create experiments in it. Paths are
    made absolute (Ray's driver may run elsewhere than the shell)."""
    if uri is None:
        return None
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise UserError(f"--mlflow {uri}: MLflow is not installed (pip install 'harness[mlflow]')")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme == "file":
        folder = Path(urlsplit(uri).path if sep else uri).expanduser().resolve()
        if folder.suffix == ".db" or (folder.exists() and not folder.is_dir()):
            raise UserError(f"--mlflow {uri}: a folder is expected here; for a database file use sqlite:///{folder}")
        if not folder.parent.is_dir():
            raise UserError(f"--mlflow {uri}: the folder {folder.parent} does not exist")
        folder.mkdir(exist_ok=True)
        return f"sqlite:///{folder / MLFLOW_DB}"
    if scheme == "sqlite":  # sqlite:///relative.db or sqlite:////absolute/path.db
        path = Path(rest[1:]).expanduser().resolve()
        if not path.parent.is_dir():
            raise UserError(f"--mlflow {uri}: the folder {path.parent} does not exist")
        return f"sqlite:///{path}"
    return uri
