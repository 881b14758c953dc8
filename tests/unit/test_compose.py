"""Both compose files load under the Compose Specification and keep the promises their comments make.

The loader is the `compose_spec` library (Rust, through its Python bindings): it refuses unknown keys,
bad durations, port ranges and dependency conditions, as `docker compose` would; no engine is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from compose_spec import PyOptions, parse_duration

from infra.kafka import DEFAULT_VERSION
from shared.lifecycle import LifecycleSettings

ROOT = Path(__file__).resolve().parents[2]
FILES = ("docker-compose.yml", "docker-compose.prod.yml")
SERVICES = ("ingest", "validate", "aggregate")


def load(name: str) -> dict[str, Any]:
    compose = PyOptions(apply_merge=True).from_yaml((ROOT / name).read_text())
    compose.validate()
    return compose.to_dict()


def brokers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in spec["services"].items() if str(svc.get("image", "")).startswith("apache/kafka")}


def test_an_unknown_key_is_refused_by_the_loader(tmp_path: Path) -> None:
    broken = (ROOT / "docker-compose.yml").read_text().replace("stop_grace_period:", "stop_grace_perod:", 1)
    with pytest.raises(ValueError, match="stop_grace_perod"):
        PyOptions(apply_merge=True).from_yaml(broken)


@pytest.mark.parametrize("name", FILES)
def test_the_services_get_longer_to_stop_than_their_own_shutdown_deadline(name: str) -> None:
    spec = load(name)
    for service in SERVICES:
        svc = spec["services"][service]
        deadline = float(svc["environment"].get("DMP_SHUTDOWN_TIMEOUT_S", LifecycleSettings().shutdown_timeout_s))
        assert parse_duration(svc["stop_grace_period"]) > deadline, (name, service)


@pytest.mark.parametrize("name", FILES)
def test_every_published_port_is_bound_to_the_loopback_interface(name: str) -> None:
    for service, svc in load(name)["services"].items():
        for port in svc.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, service, port)


@pytest.mark.parametrize("name", FILES)
def test_the_broker_image_is_the_kafka_version_the_tests_run(name: str) -> None:
    images = {svc["image"] for svc in brokers(load(name)).values()}
    assert images == {f"apache/kafka:{DEFAULT_VERSION}"}


def test_production_runs_three_brokers_that_keep_three_copies_and_need_two() -> None:
    spec = load("docker-compose.prod.yml")
    nodes = brokers(spec)
    assert len(nodes) == 3
    envs = [svc["environment"] for svc in nodes.values()]
    assert sorted(int(env["KAFKA_NODE_ID"]) for env in envs) == [1, 2, 3]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert len(voters) == 1 and len(voters.pop().split(",")) == 3
    for env in envs:
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
    for service in SERVICES:
        env = spec["services"][service]["environment"]
        assert len(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == 3, service
        assert (int(env["DMP_TOPIC_REPLICATION_FACTOR"]), int(env["DMP_TOPIC_MIN_INSYNC_REPLICAS"])) == (3, 2)


def test_production_stores_in_a_three_member_replica_set_with_majority_concerns() -> None:
    spec = load("docker-compose.prod.yml")
    members = [name for name, svc in spec["services"].items()
               if svc.get("image", "").startswith("mongo") and "--replSet" in svc.get("command", [])]
    assert len(members) == 3
    for service in ("ingest", "aggregate"):
        url = urlparse(spec["services"][service]["environment"]["MONGODB_URL"])
        options = {key: values[0] for key, values in parse_qs(url.query).items()}
        assert sorted(host.split(":")[0] for host in url.netloc.split(",")) == sorted(members)
        assert options["replicaSet"] and options["w"] == "majority" and options["readConcernLevel"] == "majority"


def test_production_runs_two_instances_of_each_service_and_validate_never_waits_for_the_store() -> None:
    spec = load("docker-compose.prod.yml")
    for service in SERVICES:
        assert spec["services"][service]["deploy"]["replicas"] == 2, service
    validate = spec["services"]["validate"]
    assert not [dep for dep in validate.get("depends_on", {}) if dep.startswith("mongo")]
    assert "MONGODB_URL" not in validate["environment"]
    assert "VALIDATE_TRANSACTIONAL_ID" in " ".join(validate["command"]), "each instance needs its own id"


@pytest.mark.parametrize("name", FILES)
def test_each_service_is_probed_for_liveness_on_its_own_port_and_restarted_when_hung(name: str) -> None:
    spec = load(name)
    for service in SERVICES:
        svc = spec["services"][service]
        test = svc["healthcheck"]["test"]
        port = svc["environment"][f"{service.upper()}_PORT"]
        assert test[:4] == ["CMD", "python", "-m", "infra.liveness"], (name, service, test)
        assert test[test.index("--port") + 1] == port, (name, service, test)
        assert svc["restart"] in {"always", "unless-stopped"}, (name, service)  # what starts it again
        probe_timeout = float(test[test.index("--timeout") + 1])
        assert parse_duration(svc["healthcheck"]["timeout"]) > probe_timeout, (name, service)
