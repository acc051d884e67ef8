"""Fault injection, environment side (issue 30): a disk that fills while features are stored is one line
saying which disk, how much was needed, that nothing finished was lost and that the same command resumes;
once space is freed the same call finishes and what was complete before is kept. The disk is a real
size-limited tmpfs where this process may mount one (root), else ENOSPC injected at the write."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.features.cache import FeatureCache
from harness.features.spec import FeatureSpec
from harness.paths import DiskFullError, disk_full_error, is_disk_full


class TinyDisk:
    """A tmpfs of ``size`` bytes at ``path``; ``grow`` frees space the way a user would (a larger disk)."""

    def __init__(self, path: Path, size: int):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
        )
        if mounted.returncode != 0:
            pytest.skip("cannot mount a size-limited tmpfs here (needs root)")

    def grow(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[TinyDisk]:
    disk = TinyDisk(tmp_path / "disk", 64 * 1024)
    yield disk
    disk.close()


def _manifest(n: int) -> pd.DataFrame:
    return pd.DataFrame({"utterance_id": [f"u{i}" for i in range(n)], "duration": [1.0] * n})


def _rows(manifest: pd.DataFrame) -> Iterator[np.ndarray]:
    for i in range(len(manifest)):
        yield np.full((100, 40), i, dtype=np.float32)  # 16 kB a row


SMALL = FeatureSpec.make("logmel", n_mels=40)
LARGE = FeatureSpec.make("logmel", n_mels=64)


def test_full_cache_disk_is_one_line_and_the_same_call_resumes(tiny_disk: TinyDisk) -> None:
    cache = FeatureCache(tiny_disk.path)
    small = cache.get(SMALL, _manifest(1), _rows, fingerprint="f", progress=False)  # 16 kB: fits
    with pytest.raises(DiskFullError) as caught:
        cache.get(LARGE, _manifest(20), _rows, fingerprint="f", progress=False)  # 320 kB: does not
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tiny_disk.path}: disk full while storing logmel features (")
    assert "about 0.3 MB needed" in message and "nothing finished was lost" in message
    assert "run the same command again to resume" in message
    assert not list(tiny_disk.path.glob("*.tmp*"))  # the half-written folder is gone, its space freed
    tiny_disk.grow(4 * 1024 * 1024)
    again = FeatureCache(tiny_disk.path)
    large = again.get(LARGE, _manifest(20), _rows, fingerprint="f", progress=False)
    assert len(large) == 20 and large[19][0, 0] == 19
    kept = again.get(SMALL, _manifest(1), lambda m: iter(()), fingerprint="f", progress=False)  # not rebuilt
    assert np.array_equal(kept[0], small[0])


def test_full_disk_is_recognised_through_wrapping_libraries() -> None:
    sqlite = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("Ray: failed to save the experiment state") from inner
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(sqlite) and not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("something else"))


def test_disk_full_message_names_the_disk_and_how_to_resume(tmp_path: Path) -> None:
    message = str(disk_full_error(tmp_path, "saving the run", 2_500_000))
    assert message.startswith(f"{tmp_path}: disk full while saving the run (") and "MB free" in message
    assert "about 2.5 MB needed" in message and message.endswith("run the same command again to resume")
