"""k8s/: the policies the deployment promises hold (probes, limits, non-root, GPUs where they belong,
reachability, routing). test_kubernetes_schemas.py checks the objects with kubectl and the schemas,
test_kubernetes_sizing.py the resources, rollouts, probes and shutdown."""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlsplit

import pytest

from .conftest import K8S, OVERLAYS, ROOT, build, gateway_settings, unknown_gateway_variables
from .conftest import container as container_script

# Secrets an operator creates before applying an overlay (docs/deploy.md); the cpu overlay generates its own
EXTERNAL_SECRETS = {"gpu": {"zooserve-postgres", "zooserve-tokens"}, "cpu": set()}
GROUPS = ("light", "medium", "heavy", "ab")
PROXY_PORTS = {9080, 9081, 9070}  # the key proxy's; TorchServe's own (8080, 8081, 7070) are loopback-only


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert matches, f"no {kind} {name}"
    return matches[0]


def pod_templates(docs: list[dict]) -> list[tuple[dict, dict]]:
    """(workload, pod spec) for every Deployment and StatefulSet."""
    return [(d, d["spec"]["template"]["spec"]) for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def containers(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def component(doc: dict) -> str | None:
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def routing(docs: list[dict]) -> dict[str, str]:
    (config,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("gateway-routing")]
    return config["data"]


# --- policies ---

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_have_probes_and_resources(overlays, overlay):
    for workload, pod in pod_templates(overlays[overlay]):
        for container in pod["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert "livenessProbe" in container and "readinessProbe" in container, f"{where}: probes"
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged(overlays, overlay):
    for workload, pod in pod_templates(overlays[overlay]):
        name = workload["metadata"]["name"]
        security = pod.get("securityContext", {})
        assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) > 0, name
        assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, f"{name}: nothing here calls the API server"
        for container in containers(pod):
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, f"{name}/{container['name']}"
            assert context.get("readOnlyRootFilesystem") is True, f"{name}/{container['name']}"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{container['name']}"
            assert not context.get("privileged"), f"{name}/{container['name']}"


def test_namespace_enforces_the_restricted_pod_security_standard(overlays):
    for overlay in OVERLAYS:
        (namespace,) = of_kind(overlays[overlay], "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert {d["metadata"].get("namespace") for d in overlays[overlay] if d["kind"] != "Namespace"} == {
            namespace["metadata"]["name"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlays, overlay):
    for _, pod in pod_templates(overlays[overlay]):
        for container in containers(pod):
            image = container["image"]
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert tag and tag != "latest", image
    images = {c["image"] for _, pod in pod_templates(overlays[overlay]) for c in pod["containers"]}
    # the slim gateway image, and each overlay's own variant of the TorchServe image
    assert {"zooserve-gateway:0.1.0", f"zooserve-torchserve:0.1.0-{overlay}"} <= images


def test_gpu_overlay_gives_every_torchserve_replica_a_gpu(overlays):
    docs = overlays["gpu"]
    torchserves = [d for d in of_kind(docs, "Deployment") if component(d) == "torchserve"]
    assert {d["metadata"]["labels"]["zooserve.io/group"] for d in torchserves} == set(GROUPS)
    for deployment in torchserves:
        pod = deployment["spec"]["template"]["spec"]
        (torchserve,) = [c for c in pod["containers"] if c["name"] == "torchserve"]
        assert int(torchserve["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        # the GPU limit schedules it; a label selector would need GPU feature discovery on every cluster
        assert "nodeSelector" not in pod and "affinity" not in pod
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # nothing else asks for a GPU
    for workload, pod in pod_templates(docs):
        for container in pod["containers"]:
            if container["name"] != "torchserve":
                assert "nvidia.com/gpu" not in json.dumps(container["resources"]), workload["metadata"]["name"]


def test_cpu_overlay_asks_for_no_gpu_and_loads_on_demand(overlays):
    docs = overlays["cpu"]
    assert "nvidia.com/gpu" not in json.dumps(docs)
    for deployment in of_kind(docs, "Deployment"):
        if component(deployment) == "torchserve":
            env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env["ZOO_TS_PRELOAD"] == "false" and "replicas" not in deployment["spec"]
    # a group that loads on demand must stay at one replica (the registration reaches one replica only)
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        if component(hpa) == "torchserve":
            assert hpa["spec"]["maxReplicas"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlays, overlay):
    docs = overlays[overlay]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for workload, pod in pod_templates(docs):
        where = workload["metadata"]["name"]
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                assert ("Secret", secret) in names or secret in EXTERNAL_SECRETS[overlay], where
        for container in containers(pod):
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, where
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    secret = ref["secretKeyRef"]["name"]
                    assert ("Secret", secret) in names or secret in EXTERNAL_SECRETS[overlay], where
                if "configMapKeyRef" in ref:
                    assert ("ConfigMap", ref["configMapKeyRef"]["name"]) in names, where
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_named_container_ports(overlays, overlay):
    docs = overlays[overlay]
    for service in of_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        pods = [pod for workload, pod in pod_templates(docs)
                if selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()]
        assert len(pods) == 1, f"Service {service['metadata']['name']} selects {len(pods)} workloads"
        ports = {p["name"]: p["containerPort"] for c in pods[0]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port['targetPort']}"
            if service["metadata"]["name"].startswith("torchserve-"):
                assert ports[port["targetPort"]] in PROXY_PORTS, "TorchServe is reached through its key proxy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_workloads_have_disruption_budgets(overlays, overlay):
    docs = overlays[overlay]
    budgets = [p["spec"]["selector"]["matchLabels"] for p in of_kind(docs, "PodDisruptionBudget")]
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = named(docs, hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
        labels = target["spec"]["template"]["metadata"]["labels"]
        assert any(budget.items() <= labels.items() for budget in budgets), hpa["metadata"]["name"]
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    assert {component(h) for h in of_kind(docs, "HorizontalPodAutoscaler")} == {"gateway", "torchserve"}


def test_gpu_overlay_autoscales_on_load_metrics(overlays):
    metrics = {h["metadata"]["name"]: [m["pods"]["metric"]["name"] for m in h["spec"]["metrics"] if m["type"] == "Pods"]
               for h in of_kind(overlays["gpu"], "HorizontalPodAutoscaler")}
    assert metrics.pop("gateway") == ["zoo_requests_in_flight"]
    assert all(names == ["ts_inference_requests_per_second"] for names in metrics.values())


def test_network_policies_keep_torchserve_inside(overlays):
    docs = overlays["gpu"]
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(docs, "NetworkPolicy")}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    torchserve = policies["torchserve"]
    assert torchserve["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "torchserve"
    allowed: dict[int, list[dict]] = {}
    for rule in torchserve["ingress"]:
        assert rule.get("from"), "every TorchServe port is restricted to named sources"
        for port in rule["ports"]:
            allowed.setdefault(port["port"], []).extend(rule["from"])
    gateway_only = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "zooserve",
                                                     "app.kubernetes.io/component": "gateway"}}}]
    for port in PROXY_PORTS:  # predictions and the management subset: the gateway only
        assert allowed[port] == gateway_only
    assert allowed[8082] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert set(allowed) == PROXY_PORTS | {8082}, "TorchServe's own ports listen on loopback and are never opened"
    assert policies["postgres"]["ingress"][0]["from"] == gateway_only


def test_torchserve_config_in_pods_differs_only_where_it_must():
    """The pods' TorchServe config is the repo's except the metrics address (Prometheus scrapes the pod)."""
    pods = container_script.read_properties(K8S / "base" / "torchserve" / "config.properties")
    repo = container_script.read_properties(ROOT / "zooserve" / "configs" / "torchserve.properties")
    assert {k for k in pods.keys() | repo.keys() if pods.get(k) != repo.get(k)} == {"metrics_address"}
    assert pods["metrics_address"] == "http://0.0.0.0:8082"
    for key in ("inference_address", "management_address"):
        assert urlsplit(pods[key]).hostname == "127.0.0.1"
    assert pods["grpc_inference_address"] == pods["grpc_management_address"] == "127.0.0.1"
    assert pods["disable_token_authorization"] == "false"


# --- the routing table ---

@pytest.fixture(scope="module")
def catalog() -> dict:
    from zooserve.zoo import list_models, model_info

    return {name: model_info(name) for name in list_models()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_reads_the_routing_table(overlays, overlay, catalog):
    docs = overlays[overlay]
    table = routing(docs)
    gateway = named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in gateway["env"] if "value" in e}
    assert not unknown_gateway_variables(set(table) | set(env))
    settings = gateway_settings({**table, **{k: v for k, v in env.items() if k != "ZOO_DATABASE_URL"}})
    assert set(settings.backends) == set(GROUPS) and settings.default_backend == "light"
    services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in of_kind(docs, "Service")}
    for name, backend in settings.backends.items():
        assert backend.key_dir is None, "the key proxy holds TorchServe's tokens"
        for url in (backend.inference_url, backend.management_url, f"grpc://{backend.grpc_address}"):
            parts = urlsplit(url)
            assert parts.hostname == f"torchserve-{name}" and parts.port in services[parts.hostname], url
    for model in settings.routes:
        assert model in catalog, f"route for unknown model {model}"
    for name, info in catalog.items():
        if info.heavy:
            assert settings.backend_for(name) == "heavy", f"{name} is heavy"


def test_experiment_models_are_served_by_the_ab_group(overlays, catalog):
    from zooserve.gateway.experiments.config import load

    experiments = load(ROOT / "deploy" / "experiments.yaml", list(catalog))
    table = {k[len("ZOO_ROUTES__"):]: v for k, v in routing(overlays["gpu"]).items() if k.startswith("ZOO_ROUTES__")}
    models = {v.model for e in experiments.experiments for v in e.variants}
    assert models and all(table.get(m) == "ab" for m in models)
    configmaps = [d for d in of_kind(overlays["gpu"], "ConfigMap") if d["metadata"]["name"].startswith("experiments")]
    assert configmaps[0]["data"]["experiments.yaml"] == (ROOT / "deploy" / "experiments.yaml").read_text()


def test_each_group_loads_its_routed_models(overlays, tmp_path, catalog):
    """deploy/container.py gives each group's TorchServe, from its own routes ConfigMap, exactly the models the
    gateway routes to it; every catalog model is routed to one group."""
    docs = overlays["gpu"]
    for name in catalog:
        (tmp_path / f"{name}.mar").touch()
    settings = gateway_settings(routing(docs))
    assert sorted(settings.routes) == sorted(catalog), "every model is routed (none falls to the default)"
    loaded = {}
    for group in GROUPS:
        (ref,) = named(docs, "Deployment", f"torchserve-{group}")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        table = named(docs, "ConfigMap", ref["configMapRef"]["name"])["data"]
        assert ref["configMapRef"]["name"].startswith(f"routes-{group}-")
        loaded[group] = container_script.group_models({**table, "ZOO_GROUP": group}, tmp_path)
        assert all(settings.backend_for(m) == group for m in loaded[group])
    assert sorted(m for models in loaded.values() for m in models) == sorted(catalog)  # each model once


def test_adding_a_group_is_a_few_lines(tmp_path):
    """A new group: a directory with two short files, and two lines in base/kustomization.yaml."""
    shutil.copytree(K8S, tmp_path / "k8s")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    base = tmp_path / "k8s" / "base"
    group = base / "groups" / "mobile"
    group.mkdir()
    (group / "kustomization.yaml").write_text(
        "resources: [../../torchserve]\nnameSuffix: -mobile\n"
        "configMapGenerator:\n  - name: routes\n    envs: [routes.env]\n"
        "labels:\n  - pairs: {zooserve.io/group: mobile}\n    includeSelectors: true\n")
    (group / "routes.env").write_text(
        'ZOO_BACKENDS__mobile={"inference_url": "http://torchserve-mobile:8080", "management_url": '
        '"http://torchserve-mobile:8081", "grpc_address": "torchserve-mobile:7070", "key_dir": null}\n'
        "ZOO_ROUTES__mobilenet_v2=mobile\n")
    light = base / "groups" / "light" / "routes.env"  # the model moves from light to the new group
    light.write_text(light.read_text().replace("ZOO_ROUTES__mobilenet_v2=light\n", ""))
    text = (base / "kustomization.yaml").read_text()
    text = text.replace("  - groups/ab\n", "  - groups/ab\n  - groups/mobile\n", 1)
    text = text.replace("      - groups/ab/routes.env\n",
                        "      - groups/ab/routes.env\n      - groups/mobile/routes.env\n")
    (base / "kustomization.yaml").write_text(text)
    docs = build(tmp_path / "k8s" / "overlays" / "gpu")
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert named(docs, kind, "torchserve-mobile")["metadata"]["labels"]["zooserve.io/group"] == "mobile"
    deployment = named(docs, "Deployment", "torchserve-mobile")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert routing(docs)["ZOO_ROUTES__mobilenet_v2"] == "mobile"


def test_model_store_is_in_the_image_and_documented():
    """The archives reach the pods inside the image (ZOO_MODEL_STORE); docs/deploy.md says how to swap them."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "zooserve store build --all --store /app/model_store" in dockerfile
    assert "ZOO_MODEL_STORE=/app/model_store" in dockerfile
    assert "model store" in (ROOT / "docs" / "deploy.md").read_text().lower()
