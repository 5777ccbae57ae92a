"""k8s/: kubectl builds every overlay and decodes every object, and every object validates against a recent
Kubernetes release's schemas (or, for the Prometheus Operator's custom resources, a structural check).

`kubectl apply --dry-run=client` cannot run here: even in client mode it asks an API server for discovery
(which resource a kind is) and for the OpenAPI document it validates against, and no server can run on our
build machines. What kubectl does offline is checked instead: `kubectl kustomize` builds each overlay
(conftest), `kubectl label --local` reads every object, and `kubectl set env --local` decodes every workload
into its typed Go struct (a wrong type fails there); the schemas (kubernetes-validate, strict) catch unknown
fields.
"""

from __future__ import annotations

import json
import subprocess

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv

from .conftest import OVERLAYS, kubectl
from .test_kubernetes import named, of_kind, pod_templates

KUBERNETES_VERSION = "1.37.0"  # the newest release kubernetes-validate (requirements-dev.txt) carries
CRD_KINDS = {"PodMonitor", "PrometheusRule"}


# --- building ---

def kubectl_local(args: list[str], docs: list[dict]) -> subprocess.CompletedProcess:
    """kubectl on these objects with --local: no API server, no kubeconfig."""
    return subprocess.run([kubectl(), *args, "--local", "-o", "name", "-f", "-"], input=yaml.safe_dump_all(docs),
                          capture_output=True, text=True, env={"KUBECONFIG": "/dev/null", "PATH": "/usr/bin:/bin"})


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_reads_every_object(overlays, overlay):
    docs = overlays[overlay]
    ids = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids)) > 20
    listed = kubectl_local(["label", "zooserve.io/checked=true"], docs)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.split()) == len(docs)
    decoded = kubectl_local(["set", "env", "ZOO_CHECKED=1"], workloads(docs))  # typed decoding
    assert decoded.returncode == 0, decoded.stderr
    assert sorted(decoded.stdout.split()) == sorted(
        f"{d['kind'].lower()}.apps/{d['metadata']['name']}" for d in workloads(docs))


def test_kubectl_decoding_has_teeth(overlays):
    broken = json.loads(json.dumps(named(overlays["gpu"], "Deployment", "gateway")))
    broken["spec"]["revisionHistoryLimit"] = "five"
    result = kubectl_local(["set", "env", "ZOO_CHECKED=1"], [broken])
    assert result.returncode != 0 and "revisionHistoryLimit" in result.stderr


# --- schemas ---

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(overlays, overlay):
    checked = 0
    for doc in overlays[overlay]:
        if doc["kind"] in CRD_KINDS:
            continue  # no schema in kubernetes-validate: test_custom_resources_pass_a_structural_check
        try:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)  # strict: unknown fields are errors
        except kv.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {error}")
        checked += 1
    assert checked >= 25


def test_strict_validation_rejects_a_misspelt_field(overlays):
    deployment = json.loads(json.dumps(named(overlays["gpu"], "Deployment", "gateway")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBERNETES_VERSION, strict=True)


# Not the operator's CRD schemas (no registry package ships them): a structural check of the fields these
# objects use, with the field names of prometheus-operator's monitoring.coreos.com/v1 CRDs, so that a typo
# fails. The rules themselves are checked by promtool (test_monitoring.py).
_LABEL_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array"}}}
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"},
                                                                    "namespace": {"type": "string"}}}
POD_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"}, "metadata": _METADATA,
        "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "podMetricsEndpoints"],
                 "properties": {
                     "jobLabel": {"type": "string"},
                     "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                     "selector": _LABEL_SELECTOR,
                     "namespaceSelector": {"type": "object"},
                     "sampleLimit": {"type": "integer"}, "targetLimit": {"type": "integer"},
                     "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False,
                         "properties": {
                             "port": {"type": "string"}, "portNumber": {"type": "integer"},
                             "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
                             "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                             "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                             "honorLabels": {"type": "boolean"}, "relabelings": {"type": "array"},
                             "metricRelabelings": {"type": "array"}}}}}}}}
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
            "groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "rules"], "properties": {
                    "name": {"type": "string"}, "interval": {"type": "string"}, "limit": {"type": "integer"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "rules": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False, "required": ["expr"],
                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                        "properties": {
                            "alert": {"type": "string"}, "record": {"type": "string"},
                            "expr": {"type": "string"}, "for": {"type": "string"},
                            "keep_firing_for": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                        }}}}}}}}}}
CRD_SCHEMAS = {"PodMonitor": POD_MONITOR, "PrometheusRule": PROMETHEUS_RULE}


def test_custom_resources_pass_a_structural_check(overlays):
    custom = [d for d in overlays["gpu"] if d["kind"] in CRD_KINDS]
    assert {d["kind"] for d in custom} == CRD_KINDS  # the gpu overlay carries the monitoring component
    for doc in custom:
        jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
    assert not [d for d in overlays["cpu"] if d["kind"] in CRD_KINDS], "laptops have no Prometheus Operator CRDs"


def test_pod_monitors_scrape_named_container_ports(overlays):
    docs = overlays["gpu"]
    for monitor in of_kind(docs, "PodMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        pods = [pod for workload, pod in pod_templates(docs)
                if selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"PodMonitor {monitor['metadata']['name']} selects no pods"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for pod in pods:
                ports = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
                assert endpoint["port"] in ports
        # the job names the alert rules and dashboard use ("gateway", "torchserve")
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
