"""Every container runs unprivileged: the image's USER, Kubernetes' security contexts, compose's `user`.

Read from the files as the tools resolve them (the overlays built, `docker-compose config`): what the runtime
is told to enforce. No cluster runs here; the containers do, and tests/deploy/test_images.py checks that
Docker enforces the user, the read-only root filesystem and the dropped capabilities.
tests/deploy checks the same contexts as part of the deployment; this is the security view of them, with
what that view adds (host namespaces and paths, added capabilities, the Docker socket, compose's users).
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import OVERLAYS, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def final_stage() -> list[tuple[str, str]]:
    """The runtime stage's instructions (the last FROM onwards), continuation lines joined."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    steps = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
             for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_image_runs_as_a_numeric_non_root_user():
    steps = final_stage()
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    args = {m.group(1): m.group(2) for m in re.finditer(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.M)}
    resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], users[-1])
    uid, _, gid = resolved.partition(":")
    # numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0), resolved


def pods(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            template = doc["spec"].get("jobTemplate", {}).get("spec", doc["spec"])["template"]
            yield doc["metadata"]["name"], template["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_pods_run_unprivileged(overlays, overlay):
    found = 0
    for name, pod in pods(overlays[overlay]):
        found += 1
        context = pod.get("securityContext", {})
        assert context.get("runAsNonRoot") is True and context.get("runAsUser", 0) > 0, name
        assert context.get("runAsGroup", 0) > 0, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key), f"{name}: {key}"
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], f"{name}: hostPath"
        assert pod.get("automountServiceAccountToken") is False, f"{name}: no API token in the pod"
        for box in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{name}/{box['name']}"
            own = box.get("securityContext", {})
            assert own.get("runAsUser", 1) > 0 and own.get("runAsNonRoot", True) is True, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("privileged", False) is False, where
            assert own.get("readOnlyRootFilesystem") is True, where
            assert own.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not own.get("capabilities", {}).get("add"), where
            assert not [p for p in box.get("ports", []) if "hostPort" in p], where
    assert found >= 6, "the gateway, four model groups and PostgreSQL"


@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_compose_services_run_unprivileged(composes, variant):
    for name, service in composes[variant]["services"].items():
        uid, _, gid = str(service.get("user", "")).partition(":")
        assert uid.isdigit() and int(uid) > 0, f"{name}: user {service.get('user')!r}"
        assert service.get("cap_drop") == ["ALL"] and not service.get("cap_add"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name
        assert service.get("network_mode", "") != "host" and service.get("pid") != "host", name
        sockets = [v for v in service.get("volumes", []) if "docker.sock" in str(v.get("source", ""))]
        assert not sockets, f"{name}: the Docker socket is root on the host"


@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_compose_our_image_runs_as_the_images_user_on_a_read_only_root(composes, variant):
    services = composes[variant]["services"]
    steps = dict(final_stage()[::-1])
    for name in ("torchserve", "gateway"):
        assert services[name]["read_only"] is True, name
        assert services[name]["user"] == "10001:10001" and "ARG UID=10001" in DOCKERFILE.read_text(), name
        assert steps["USER"] == "${UID}:${UID}"
