"""Every TorchServe configuration we deploy keeps token authorization on, its inference and management APIs
on loopback, and archives from the local store only; and nothing publishes the management API.

The configurations are resolved as the deployments resolve them: the repo's config as `make serve` writes
it; the container entry point (deploy/container.py write_config) with the environment Docker Compose
gives the torchserve service (`docker-compose config`, the real loader) and with each Kubernetes model
group's ConfigMap and env (the overlays built as tests/deploy builds them). The check itself is
deploy/container.py's insecure_settings, which the entry point runs before every TorchServe start; the
tests below also show it refusing each way of opening TorchServe up.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import OVERLAYS, ROOT, container
from zooserve.torchserve import TorchServePorts, read_properties, write_config

REPO_CONFIG = ROOT / "zooserve" / "configs" / "torchserve.properties"
MANAGEMENT_PORTS = {8081, 7071}  # TorchServe's management APIs, HTTP and gRPC
PROXY_MANAGEMENT_PORT = 9081  # the Kubernetes key proxy's management subset


def entrypoint_config(tmp_path: Path, monkeypatch, env: dict[str, str], template: Path | None = None) -> dict:
    """TorchServe's config as the image's entry point writes it for a container with this environment."""
    monkeypatch.setenv("ZOO_MODEL_STORE", str(tmp_path / "store"))
    if template is None:
        monkeypatch.delenv("ZOO_TS_CONFIG", raising=False)
    else:
        monkeypatch.setenv("ZOO_TS_CONFIG", str(template))
    return container.read_properties(container.write_config(tmp_path, env, None))


def assert_locked_down(props: dict[str, str], where: str) -> None:
    assert container.insecure_settings(props) == [], where
    # and spelled out, so a weakened insecure_settings cannot pass this test alone
    assert props["disable_token_authorization"] == "false", where
    assert urlsplit(props["management_address"]).hostname == "127.0.0.1", where
    assert props["grpc_management_address"] == "127.0.0.1", where
    assert props["allowed_urls"] == "^$", where
    assert props.get("enable_envvars_config", "false") == "false", where


# --- 1 and 3: token authorization, loopback and allowed_urls in every configuration ---

def test_repo_config_and_make_serve(tmp_path):
    assert_locked_down(read_properties(REPO_CONFIG), "zooserve/configs/torchserve.properties")
    written = write_config(tmp_path, TorchServePorts(), tmp_path / "store")  # what zooserve.torchserve starts
    assert_locked_down(read_properties(written), "make serve")


def test_single_container_serve_keeps_authorization_on():
    """`docker run zooserve` (role serve) starts TorchServe through zooserve.serve with the default backend,
    whose key directory is set: no authorization override."""
    from zooserve.gateway.settings import BackendSettings
    from zooserve.serve import torchserve_for

    backend = BackendSettings()
    assert backend.key_dir is not None
    assert "disable_token_authorization" not in torchserve_for(backend, 8082, 7071, Path("store")).config


@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_compose_torchserve(composes, variant, tmp_path, monkeypatch):
    env = composes[variant]["services"]["torchserve"]["environment"]
    assert_locked_down(entrypoint_config(tmp_path, monkeypatch, env), f"compose {variant}")


def k8s_torchserve_containers(docs: list[dict]):
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"].startswith("torchserve-"):
            pod = doc["spec"]["template"]["spec"]
            (ts,) = [c for c in pod["containers"] if c["name"] == "torchserve"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            yield doc["metadata"]["name"], ts, volumes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_torchserve(overlays, overlay, tmp_path, monkeypatch):
    docs = overlays[overlay]
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    groups = 0
    for name, ts, volumes in k8s_torchserve_containers(docs):
        env = {e["name"]: e["value"] for e in ts.get("env", []) if "value" in e}
        (mount,) = [m for m in ts["volumeMounts"] if m["mountPath"] == str(Path(env["ZOO_TS_CONFIG"]).parent)]
        template = tmp_path / name / "config.properties"
        template.parent.mkdir()
        template.write_text(maps[volumes[mount["name"]]["configMap"]["name"]]["config.properties"])
        assert_locked_down(entrypoint_config(tmp_path / name, monkeypatch, env, template), f"{overlay}/{name}")
        groups += 1
    assert groups == 4, "light, medium, heavy and ab"


OPENINGS = {
    "TS_DISABLE_TOKEN_AUTHORIZATION": "true",
    "TS_MANAGEMENT_ADDRESS": "http://0.0.0.0:8081",
    "TS_INFERENCE_ADDRESS": "http://10.0.0.5:8080",
    "TS_GRPC_MANAGEMENT_ADDRESS": "0.0.0.0",
    "TS_GRPC_INFERENCE_ADDRESS": "0.0.0.0",
    "TS_ALLOWED_URLS": "https://.*",
    "TS_ENABLE_ENVVARS_CONFIG": "true",
}


@pytest.mark.parametrize("variable", sorted(OPENINGS))
def test_the_entrypoint_refuses_to_open_torchserve_up(variable, tmp_path, monkeypatch):
    """What a stray TS_* variable in a compose file or a pod spec would do: the container does not start."""
    key = variable[3:].lower()
    with pytest.raises(SystemExit, match=re.escape(key)):
        entrypoint_config(tmp_path, monkeypatch, {variable: OPENINGS[variable]})


def test_the_entrypoint_refuses_a_config_without_allowed_urls(tmp_path, monkeypatch):
    """TorchServe's default allowed_urls takes any http(s) or file URL: leaving the key out is refused too."""
    props = read_properties(REPO_CONFIG)
    del props["allowed_urls"]
    template = tmp_path / "other.properties"
    template.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    with pytest.raises(SystemExit, match="allowed_urls"):
        entrypoint_config(tmp_path, monkeypatch, {}, template)


# --- 2: the management API is published nowhere ---

@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_compose_publishes_no_torchserve_api(composes, variant):
    services = composes[variant]["services"]
    published = {(name, p["target"]) for name, s in services.items() for p in s.get("ports", [])}
    # the torchserve service's two ports are the gateway's: it shares torchserve's network namespace
    assert {t for n, t in published if n == "torchserve"} == {8000, 50051}
    assert services["gateway"]["network_mode"] == "service:torchserve"
    assert not {t for _, t in published} & (MANAGEMENT_PORTS | {8080, 7070})
    assert all("expose" not in s or not set(map(int, s["expose"])) & MANAGEMENT_PORTS for s in services.values())


def selected_pod(docs: list[dict], service: dict) -> dict:
    selector = service["spec"]["selector"].items()
    (pod,) = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")
              and selector <= d["spec"]["template"]["metadata"]["labels"].items()]
    return pod


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_reaches_management_only_inside_the_cluster(overlays, overlay):
    docs = overlays[overlay]
    assert not [d for d in docs if d["kind"] in ("Ingress", "Gateway", "HTTPRoute", "GRPCRoute")]
    for service in (d for d in docs if d["kind"] == "Service"):
        name = service["metadata"]["name"]
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", f"{name}: cluster-internal only"
        assert not service["spec"].get("externalIPs"), name
        pod = selected_pod(docs, service)
        ports = {p["name"]: (c["name"], p["containerPort"]) for c in pod["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            owner, number = ports[port["targetPort"]]
            assert number not in MANAGEMENT_PORTS, f"{name}: TorchServe's own management port"
            if port["port"] == 8081:  # the group's management address in the routing table: the proxy's subset
                assert (owner, number) == ("keyproxy", PROXY_MANAGEMENT_PORT), name
    policies = [d["spec"] for d in docs if d["kind"] == "NetworkPolicy"]
    sources = [rule.get("from") for spec in policies for rule in spec.get("ingress", [])
               if any(p["port"] == PROXY_MANAGEMENT_PORT for p in rule.get("ports", []))]
    gateway = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "zooserve",
                                               "app.kubernetes.io/component": "gateway"}}}
    assert sources == [[gateway]], "only the gateway's pods reach the management subset"


def test_key_proxy_passes_only_the_management_calls_the_gateway_makes():
    """The proxy's management server: GET/POST /models, GET/DELETE /models/<name>[/<version>], else 404
    (test_allowed_urls.py and tests/deploy/test_container.py send requests through the real nginx)."""
    template = (ROOT / "deploy" / "keyproxy" / "nginx.conf.template").read_text()
    server = template.split("listen ${MANAGEMENT_PORT};")[1].split("\n    server {")[0]
    locations = re.findall(r"location ([^{]+)\{(.*?)\n        \}", server, re.S)
    rules = {where.strip(): (re.findall(r"limit_except ([A-Z ]+)\{", body), "proxy_pass" in body,
                             "if ($$registration_refused)" in body) for where, body in locations}
    assert rules == {
        "= /models": (["GET POST "], True, True),  # registering: a store archive's name only
        "~ ^/models/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$$": (["GET DELETE "], True, False),
        "/": ([], False, False),
    }
    assert "return 404;" in server.split("location / {")[1]
