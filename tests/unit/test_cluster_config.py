from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster.yaml"


def test_cluster_yaml_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER.read_text())
    validate_config(prepare_config(config))  # what `ray up` does: fill defaults, then check the schema
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["max_workers"] >= 1
    assert any("pip install -e ." in c for c in config["setup_commands"])
    assert not any("nfs" in c for c in config["setup_commands"])  # records travel through Ray's storage


def test_cluster_dashboard_is_not_exposed_and_token_auth_is_on():
    """The dashboard's Jobs API runs any code it is sent: it stays on the head's localhost (the launcher
    forwards it), and every node starts with Ray's token authentication."""
    config = yaml.safe_load(CLUSTER.read_text())
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert starts and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert not any("0.0.0.0" in c for c in starts)
    assert any(path.endswith(".ray/auth_token") for path in config["file_mounts"])


def test_schema_validator_catches_mistakes():
    from jsonschema.exceptions import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER.read_text())
    config["available_node_types"]["gpu_worker"]["max_worker"] = 4  # typo
    with pytest.raises(ValidationError, match="max_worker"):
        validate_config(prepare_config(config))
