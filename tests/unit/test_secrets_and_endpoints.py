"""Issue 31: no password given in a URL reaches a run file or a message, and an unreachable endpoint is one
line within seconds, before Ray (closed local ports stand in for a dead server)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.endpoints import UnreachableEndpoint, probe_optuna_storage, probe_ray_address, probe_storage
from harness.redact import SecretFilter, mask_argv, mask_secrets

SECRET = "S3cr3t-pw"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://alice:{SECRET}@db.example.org:5432/optuna",
        f"mysql+pymysql://root:{SECRET}@10.0.0.5/studies",
        f"s3://KEYID:{SECRET}@bucket/runs",
        f"https://user:{SECRET}@mlflow.example.org",
        f"sqlite:////tmp/o.db?password={SECRET}",
        f"gs://bucket/runs?access_key=AK&secret_key={SECRET}",
        f"postgresql://alice:p@ss{SECRET}@db/optuna",  # an unencoded @ inside the password
    ],
)
def test_passwords_in_urls_are_masked_and_the_rest_kept(text):
    masked = mask_secrets(f"--optuna-storage {text} --name run1")
    assert SECRET not in masked and "***" in masked
    assert masked.endswith("--name run1")


def test_urls_without_credentials_are_unchanged():
    for text in ["s3://bucket/runs?region=us-east-1", "sqlite:////tmp/a.db", "postgresql://alice@db/optuna", "a:b"]:
        assert mask_secrets(text) == text


def test_log_records_are_masked_however_the_secret_arrives(caplog):
    logger = logging.getLogger("harness.test_secrets")
    handler = logging.StreamHandler()
    handler.addFilter(SecretFilter())
    caplog.handler.addFilter(SecretFilter())
    logger.warning("storage %s failed", f"postgresql://a:{SECRET}@h/db")
    logger.warning(f"inline postgresql://a:{SECRET}@h/db")
    assert caplog.messages and all(SECRET not in m for m in caplog.messages)


def test_the_lock_holder_and_its_refusal_never_carry_the_password(tmp_path, monkeypatch):
    from harness.lock import HOLDER, Holder, RunLock
    from harness.store import Storage

    monkeypatch.setattr(sys, "argv", ["harness", "search", "--optuna-storage", f"postgresql://a:{SECRET}@h/db"])
    assert SECRET not in Holder.me().command
    store = Storage(tmp_path).run("run1")
    lock = RunLock(store).acquire()
    try:
        held = (Path(store.path) / "harness" / HOLDER).read_text()
        assert SECRET not in held and json.loads(held)["command"].startswith("harness search")
        planted = Holder("h", 1, time.time(), f"harness search --storage s3://k:{SECRET}@b/r")
        assert SECRET not in str(lock._refuse(planted))
    finally:
        lock.release()
    assert mask_argv(["x", f"--mlflow=https://u:{SECRET}@host"]) == "x --mlflow=https://u:***@host"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_ray_address_and_optuna_server_fail_in_one_line_at_once():
    port = closed_port()
    started = time.time()
    with pytest.raises(UnreachableEndpoint, match=r"--address 127\.0\.0\.1:\d+: connection refused"):
        probe_ray_address(f"127.0.0.1:{port}")
    with pytest.raises(UnreachableEndpoint) as caught:
        probe_optuna_storage(f"postgresql://alice:{SECRET}@127.0.0.1:{port}/optuna")
    assert "connection refused" in str(caught.value) and SECRET not in str(caught.value)
    assert time.time() - started < 5
    probe_ray_address("auto")  # left to Ray
    probe_optuna_storage("sqlite:////tmp/x.db")  # a file, no server


def test_an_object_store_that_never_answers_is_given_up_on_within_the_timeout(monkeypatch, tmp_path):
    """A store client that hangs (pyarrow's GCS client retries for tens of minutes offline) is a child
    process killed at the timeout; here the child is made to hang on purpose."""
    import harness.endpoints as endpoints

    monkeypatch.setattr(endpoints, "_PROBE_STORAGE", "import time; time.sleep(60)")
    started = time.time()
    with pytest.raises(UnreachableEndpoint, match=r"--storage gs://bucket/runs: no answer within 2 s"):
        probe_storage("gs://bucket/runs", timeout_s=2)
    assert time.time() - started < 10
    probe_storage(str(tmp_path))  # local paths are checked by the caller


@pytest.mark.timeout(120)
def test_the_search_command_refuses_a_closed_address_before_ray_with_one_line(tmp_path):
    port = closed_port()
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--smoke-test", "--address", f"127.0.0.1:{port}"]
        + ["--storage", str(tmp_path / "store"), "--optuna-storage", f"postgresql://u:{SECRET}@127.0.0.1:{port}/d"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=110,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--address" in errors[0] and "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert time.time() - started < 30
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(SECRET not in p.read_text(errors="ignore") for p in written)
