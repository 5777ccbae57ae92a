"""k8s/ as a first deployment on a GPU cluster needs it: resources from the measured figures, rollouts that
fit a full GPU pool, probes that do not restart a group for one model, room to drain on shutdown.

The figures are read from the documents that hold the measurements: worker memory per model from
docs/serving-profile.md, parameters from docs/models.md, the gateway's memory from docs/reliability.md.
The node assumed is the one docs/deploy.md states: 8 vCPUs, 32 GiB, one GPU.
"""

from __future__ import annotations

import re

import pytest

from zooserve.snapshot import EXPORTED_RUNTIMES

from .conftest import OVERLAYS, ROOT
from .test_kubernetes import GROUPS, component, named, of_kind, pod_templates

GiB = 1024**3
NODE_MEMORY = 32 * GiB
NODE_CPUS = 8
HEADROOM = 1.2  # a group's memory request is at least its models' measured resident memory times this
UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": GiB}


def quantity(value: str | int) -> float:
    text = str(value)
    for suffix, factor in UNITS.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def table_column(path: str, pattern: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, (ROOT / path).read_text(), re.M)}



def parameters_m() -> dict[str, float]:
    """Millions of parameters per model: the first "<n>M" cell after the model's name in docs/models.md's tables."""
    found = {}
    for line in (ROOT / "docs" / "models.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        names = [i for i, c in enumerate(cells) if re.fullmatch(r"`\w+`", c)]
        figures = [c for c in cells[names[0] + 1:] if re.fullmatch(r"[\d.]+M", c)] if names else []
        if figures:
            found.setdefault(cells[names[0]].strip("`"), float(figures[0][:-1]))
    return found


def runtimes() -> dict[str, str]:
    """Each model's runtime: the last cell of its row in docs/models.md's tables."""
    pattern = r"^\|[^`]* `(\w+)` \|.* \| (eager|compile|onnxruntime|openvino) \|$"
    return {m.group(1): m.group(2) for m in re.finditer(pattern, (ROOT / "docs" / "models.md").read_text(), re.M)}


WORKER_MIB = table_column("docs/serving-profile.md", r"^\| `(\w+)` \| [\d.]+ \| (\d+) \|")
PARAMS_M = parameters_m()
RUNTIMES = runtimes()
# an ONNX file or an OpenVINO IR (EXPORTED_RUNTIMES) holds the float32 weights again, beside the weights file
# the archive also carries (a worker on a device the runtime does not run on, an OpenVINO archive on CUDA,
# serves eager from it)


def group_models(docs: list[dict], group: str) -> list[str]:
    (ref,) = named(docs, "Deployment", f"torchserve-{group}")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    table = named(docs, "ConfigMap", ref["configMapRef"]["name"])["data"]
    return [k[len("ZOO_ROUTES__"):] for k, v in table.items() if k.startswith("ZOO_ROUTES__") and v == group]


def torchserve_pod(docs: list[dict], group: str) -> tuple[dict, dict]:
    pod = named(docs, "Deployment", f"torchserve-{group}")["spec"]["template"]["spec"]
    (torchserve,) = [c for c in pod["containers"] if c["name"] == "torchserve"]
    return pod, torchserve


def test_the_figures_were_read():
    assert len(WORKER_MIB) >= 45 and len(PARAMS_M) >= 45 and len(RUNTIMES) >= 45
    assert "nodes: 8 vCPUs, 32 GiB" in (ROOT / "docs" / "deploy.md").read_text()


@pytest.mark.parametrize("group", GROUPS)
def test_groups_are_sized_from_the_measured_memory_and_fit_a_node(overlays, group):
    docs = overlays["gpu"]
    models = group_models(docs, group)
    pod, torchserve = torchserve_pod(docs, group)
    measured = sum(WORKER_MIB[m] for m in models) * 1024**2
    requests, limits = torchserve["resources"]["requests"], torchserve["resources"]["limits"]
    assert quantity(requests["memory"]) >= HEADROOM * measured, f"{group}: {measured / GiB:.1f} GiB measured"
    # the whole pod (TorchServe and the key proxy) fits the node assumed, with room for the kubelet
    pod_memory = sum(quantity(c["resources"]["limits"]["memory"]) for c in pod["containers"])
    pod_cpu = sum(quantity(c["resources"]["requests"]["cpu"]) for c in pod["containers"])
    assert pod_memory <= NODE_MEMORY - 4 * GiB and pod_cpu <= NODE_CPUS - 1, group


@pytest.mark.parametrize("group", GROUPS)
def test_temp_directory_holds_the_float32_weights(overlays, group):
    """TorchServe unpacks every archive into /tmp: with real weights that is 4 bytes per parameter, twice
    for a model served on an exported runtime (its artefact, and the weights file)."""
    docs = overlays["gpu"]
    copies = {m: 2 if RUNTIMES[m] in EXPORTED_RUNTIMES else 1 for m in group_models(docs, group)}
    weights = sum(PARAMS_M[m] * n for m, n in copies.items()) * 1e6 * 4
    pod, torchserve = torchserve_pod(docs, group)
    (tmp,) = [m for m in torchserve["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    size = quantity(volume["emptyDir"]["sizeLimit"])
    assert size >= 1.25 * weights, f"{group}: {weights / GiB:.1f} GiB of weights"
    volumes = sum(quantity(v["emptyDir"].get("sizeLimit", 0)) for v in pod["volumes"] if "emptyDir" in v)
    assert quantity(torchserve["resources"]["requests"]["ephemeral-storage"]) >= size
    assert quantity(torchserve["resources"]["limits"]["ephemeral-storage"]) >= volumes


def test_gateway_memory_covers_its_measured_peaks(overlays):
    """docs/reliability.md: 820-880 MiB at rest, up to 1.9 GiB under bursts of large gRPC bodies."""
    reliability = (ROOT / "docs" / "reliability.md").read_text()
    peak_mib = max(float(x) for x in re.findall(r"to (\d+) MiB", reliability))
    (gateway,) = named(overlays["gpu"], "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    assert quantity(gateway["resources"]["requests"]["memory"]) >= 880 * 1024**2
    assert quantity(gateway["resources"]["limits"]["memory"]) >= peak_mib * 1024**2 > 1800 * 1024**2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_workloads_leave_replicas_to_the_autoscaler(overlays, overlay):
    docs = overlays[overlay]
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert {"gateway", *(f"torchserve-{g}" for g in GROUPS)} <= scaled
    for name in scaled:
        assert "replicas" not in named(docs, "Deployment", name)["spec"], f"{name}: every apply would reset it"


def test_gpu_rollouts_need_no_spare_gpu(overlays):
    for deployment in of_kind(overlays["gpu"], "Deployment"):
        if component(deployment) == "torchserve":
            update = deployment["spec"]["strategy"]["rollingUpdate"]
            assert update == {"maxUnavailable": 1, "maxSurge": 0}, deployment["metadata"]["name"]


def test_one_bad_model_neither_restarts_nor_unreadies_a_group(overlays):
    """Liveness and readiness ask only whether TorchServe answers; every model READY is the startup check."""
    for deployment in of_kind(overlays["gpu"], "Deployment"):
        if component(deployment) != "torchserve":
            continue
        for box in deployment["spec"]["template"]["spec"]["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                command = box[probe].get("exec", {}).get("command", [])
                assert "--ready" not in command, f"{deployment['metadata']['name']}/{box['name']}: {probe}"
        (torchserve,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "torchserve"]
        assert torchserve["startupProbe"]["exec"]["command"][-1] == "--ready"


def test_each_group_reads_only_its_own_routes(overlays):
    """A route change rolls the gateways and the group it touches, not every group."""
    docs = overlays["gpu"]
    for group in GROUPS:
        _, torchserve = torchserve_pod(docs, group)
        assert [r["configMapRef"]["name"].rsplit("-", 1)[0] for r in torchserve["envFrom"]] == [f"routes-{group}"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_get_time_to_drain(overlays, overlay):
    """preStop keeps a pod serving while the Service drops it; the grace period covers that and the drain."""
    docs = overlays[overlay]
    for workload, pod in pod_templates(docs):
        if component(workload) not in ("gateway", "torchserve"):
            continue
        grace = pod["terminationGracePeriodSeconds"]
        for box in pod["containers"]:
            (sleep, seconds) = box["lifecycle"]["preStop"]["exec"]["command"]
            assert sleep == "sleep" and 5 <= int(seconds) < grace, workload["metadata"]["name"]
        if component(workload) == "torchserve":  # it does not drain: nothing may be in flight at the signal
            settings = pytest.importorskip("zooserve.gateway.settings")
            timeout = settings.Settings.model_fields["request_timeout_s"].default
            assert int(box["lifecycle"]["preStop"]["exec"]["command"][1]) >= timeout, workload["metadata"]["name"]
        if component(workload) == "gateway":
            env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
            drain = float(env.get("ZOO_SHUTDOWN_GRACE_S", 30))  # the gateway's settings.shutdown_grace_s
            assert grace >= int(box["lifecycle"]["preStop"]["exec"]["command"][1]) + drain
