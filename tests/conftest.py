from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HARNESS_CACHE", tempfile.mkdtemp(prefix="harness_cache_"))

import pytest  # noqa: E402

from harness.corpus import load_corpus  # noqa: E402
from harness.corpus.demo import write_demo_corpus  # noqa: E402


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    return write_demo_corpus(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_corpus(demo_root):
    return load_corpus(demo_root)


@pytest.fixture(scope="session")
def demo_manifest(demo_corpus):
    return demo_corpus.manifest()
