"""A small kustomize: enough of it to build k8s/overlays/* where `kubectl kustomize` is not installed.

CI machines may lack kubectl, and kustomize is not a Debian or PyPI package, so the tests build the overlays
with this where they must. Where kubectl is present, test_kustomize_matches_kubectl builds every overlay both
ways and requires the same objects, so this stays honest about the features our kustomizations use:

- resources (files and directories), components, namespace, namePrefix/nameSuffix, labels (with
  includeSelectors / includeTemplates), images, replicas;
- configMapGenerator and secretGenerator (files, envs, literals, options.labels, behavior create/merge/
  replace) with kustomize's content hash suffix;
- patches (path or inline) in JSON 6902 form, with targets by kind, name, namespace and labelSelector;
- name references: a renamed ConfigMap, Secret, workload, Service, PVC or ServiceAccount is renamed where pod
  templates, autoscalers and StatefulSets refer to it.

Anything else in a kustomization (strategic merge patches, replacements, helm charts...) raises
NotImplementedError rather than building something different from kustomize.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion", "kind", "resources", "components", "namespace", "namePrefix", "nameSuffix", "labels",
    "images", "replicas", "configMapGenerator", "secretGenerator", "generatorOptions", "patches",
}
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "PriorityClass", "APIService", "IngressClass", "RuntimeClass", "CSIDriver",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "VolumeAttachment",
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass
class Res:
    doc: dict[str, Any]
    generated: bool = False  # ConfigMaps and Secrets from generators: they get the content hash suffix
    hash_suffix: bool = True

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]


@dataclass
class _Context:
    root: Path
    resources: list[Res] = field(default_factory=list)


# --- pod templates and the references in them ---

def pod_specs(doc: dict) -> list[dict]:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind in WORKLOADS:
        return [spec.get("template", {}).get("spec", {})]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    return []


def _containers(pod: dict) -> list[dict]:
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def _references(doc: dict) -> list[tuple[str, dict, str]]:
    """(kind referred to, the dict holding the name, its key) for every name reference ``doc`` makes."""
    found: list[tuple[str, dict, str]] = []
    for pod in pod_specs(doc):
        if "serviceAccountName" in pod:
            found.append(("ServiceAccount", pod, "serviceAccountName"))
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                found.append(("ConfigMap", volume["configMap"], "name"))
            if "secret" in volume:
                found.append(("Secret", volume["secret"], "secretName"))
            if "persistentVolumeClaim" in volume:
                found.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"], "claimName"))
            for source in (volume.get("projected") or {}).get("sources", []):
                for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                    if key in source:
                        found.append((kind, source[key], "name"))
        for container in _containers(pod):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    found.append(("ConfigMap", source["configMapRef"], "name"))
                if "secretRef" in source:
                    found.append(("Secret", source["secretRef"], "name"))
            for env in container.get("env", []):
                ref = env.get("valueFrom") or {}
                if "configMapKeyRef" in ref:
                    found.append(("ConfigMap", ref["configMapKeyRef"], "name"))
                if "secretKeyRef" in ref:
                    found.append(("Secret", ref["secretKeyRef"], "name"))
    if doc.get("kind") == "HorizontalPodAutoscaler":
        target = doc["spec"]["scaleTargetRef"]
        found.append((target["kind"], target, "name"))
    if doc.get("kind") == "StatefulSet" and "serviceName" in doc.get("spec", {}):
        found.append(("Service", doc["spec"], "serviceName"))
    return found


def rename(scope: list[Res], res: Res, new: str) -> None:
    """Renames ``res`` and every reference to it from the resources in ``scope``."""
    old = res.name
    for other in scope:
        for kind, holder, key in _references(other.doc):
            if kind == res.kind and holder.get(key) == old:
                holder[key] = new
    res.doc["metadata"]["name"] = new


# --- generators ---

def _go_json(value: Any) -> str:
    """json.Marshal's output: sorted keys, no spaces, UTF-8, and HTML characters escaped as Go does."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def content_hash(doc: dict) -> str:
    """kustomize's name suffix: sha256 of kind, type and data (the name is hashed empty), 10 characters."""
    if doc["kind"] == "ConfigMap":
        encoded: dict[str, Any] = {"kind": "ConfigMap", "name": "", "data": doc.get("data") or ""}
        if doc.get("binaryData"):
            encoded["binaryData"] = doc["binaryData"]
    else:
        encoded = {"kind": "Secret", "type": doc.get("type", ""), "name": "", "data": doc.get("data") or ""}
    digest = hashlib.sha256(_go_json(encoded).encode()).hexdigest()
    return digest[:10].translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _env_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise NotImplementedError(f"env line without '=': {line!r}")
        pairs.append((key, value))
    return pairs


def _generated(ctx: _Context, spec: dict, kind: str, options: dict) -> Res:
    data: dict[str, str] = {}
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for env in spec.get("envs", []) + ([spec["env"]] if "env" in spec else []):
        data.update(_env_pairs(_read(ctx.root, env)))
    for item in spec.get("files", []):
        key, sep, path = item.partition("=")
        if not sep:
            key, path = Path(item).name, item
        data[key] = _read(ctx.root, path)
    metadata: dict[str, Any] = {"name": spec["name"]}
    if spec.get("namespace"):
        metadata["namespace"] = spec["namespace"]
    labels = {**(options.get("labels") or {}), **((spec.get("options") or {}).get("labels") or {})}
    if labels:
        metadata["labels"] = labels
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "Secret":
        doc["type"] = spec.get("type", "Opaque")
        doc["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        doc["data"] = data
    disable = (spec.get("options") or {}).get("disableNameSuffixHash", options.get("disableNameSuffixHash", False))
    return Res(doc, generated=True, hash_suffix=not disable)


def _run_generators(ctx: _Context, kustomization: dict) -> None:
    options = kustomization.get("generatorOptions") or {}
    for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for spec in kustomization.get(key) or []:
            new = _generated(ctx, spec, kind, options)
            behavior = spec.get("behavior", "create")
            existing = [r for r in ctx.resources if r.kind == kind and r.generated and r.name == spec["name"]]
            if behavior == "create":
                if existing:
                    raise ValueError(f"{kind} {spec['name']} generated twice")
                ctx.resources.append(new)
            elif not existing:
                raise ValueError(f"{behavior}: no {kind} {spec['name']} to {behavior}")
            elif behavior == "merge":
                old = existing[0].doc
                old.setdefault("data", {}).update(new.doc.get("data", {}))
                if new.doc["metadata"].get("labels"):
                    old["metadata"].setdefault("labels", {}).update(new.doc["metadata"]["labels"])
            elif behavior == "replace":
                existing[0].doc = new.doc
            else:
                raise NotImplementedError(f"generator behavior {behavior!r}")


# --- transformers ---

def _pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def json6902(doc: dict, operations: list[dict]) -> None:
    for op in operations:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        value = copy.deepcopy(op.get("value"))
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, value)
            elif kind == "replace":
                node[index] = value
            elif kind == "remove":
                del node[index]
            else:
                raise NotImplementedError(f"JSON patch op {kind!r}")
        else:
            if kind in ("replace", "remove") and last not in node:
                raise KeyError(f"{op['path']}: nothing to {kind}")
            if kind in ("add", "replace"):
                node[last] = value
            elif kind == "remove":
                del node[last]
            else:
                raise NotImplementedError(f"JSON patch op {kind!r}")


def _matches(res: Res, target: dict) -> bool:
    metadata = res.doc["metadata"]
    if "kind" in target and res.kind != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], res.name):
        return False
    if "namespace" in target and metadata.get("namespace") != target["namespace"]:
        return False
    for requirement in filter(None, (target.get("labelSelector") or "").split(",")):
        key, _, value = requirement.strip().partition("=")
        if (metadata.get("labels") or {}).get(key.strip()) != value.strip().lstrip("="):
            return False
    if {"group", "version", "annotationSelector"} & set(target):
        raise NotImplementedError(f"patch target fields {sorted(target)}")
    return True


def _apply_patches(ctx: _Context, patches: list[dict]) -> None:
    for patch in patches:
        text = _read(ctx.root, patch["path"]) if "path" in patch else patch["patch"]
        operations = yaml.safe_load(text)
        if not isinstance(operations, list):
            raise NotImplementedError("strategic merge patches: only JSON 6902 patches are built here")
        targets = [r for r in ctx.resources if _matches(r, patch.get("target") or {})]
        if not targets:
            raise ValueError(f"patch {patch.get('path', '(inline)')} matches no resource")
        for res in targets:
            json6902(res.doc, operations)


def _set_labels(holder: dict, key: str, labels: dict, create: bool = True) -> None:
    if key in holder or create:
        holder[key] = {**(holder.get(key) or {}), **labels}


def _apply_labels(resources: list[Res], entry: dict) -> None:
    labels = entry["pairs"]
    selectors, templates = entry.get("includeSelectors", False), entry.get("includeTemplates", False)
    for res in resources:
        doc, spec = res.doc, res.doc.get("spec")
        _set_labels(doc["metadata"], "labels", labels)
        if spec is None:
            continue
        if res.kind in WORKLOADS and (selectors or templates):
            _set_labels(spec.setdefault("template", {}).setdefault("metadata", {}), "labels", labels)
            if res.kind == "StatefulSet" and selectors:
                for claim in spec.get("volumeClaimTemplates", []):
                    _set_labels(claim.setdefault("metadata", {}), "labels", labels)
        if not selectors:
            continue
        if res.kind in WORKLOADS - {"Job"}:
            _set_labels(spec.setdefault("selector", {}), "matchLabels", labels)
        elif res.kind == "Service":
            _set_labels(spec, "selector", labels)
        elif res.kind == "PodDisruptionBudget" and "selector" in spec:
            _set_labels(spec["selector"], "matchLabels", labels, create=False)
        elif res.kind in ("NetworkPolicy", "CronJob", "Job"):
            raise NotImplementedError(f"labels with includeSelectors on a {res.kind}")


def _split_image(image: str) -> tuple[str, str]:
    """(name, the tag or digest part with its separator)."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    return (image[:colon], image[colon:]) if colon > slash else (image, "")


def _apply_images(resources: list[Res], images: list[dict]) -> None:
    for res in resources:
        for pod in pod_specs(res.doc):
            for container in _containers(pod):
                name, tag = _split_image(container["image"])
                for image in images:
                    if image["name"] != name:
                        continue
                    new_name = image.get("newName", name)
                    new_tag = (":" + image["newTag"]) if "newTag" in image else tag
                    if "digest" in image:
                        new_tag = "@" + image["digest"]
                    container["image"] = new_name + new_tag


def _run_transformers(ctx: _Context, kustomization: dict, scope_start: int = 0) -> None:
    _apply_patches(ctx, kustomization.get("patches") or [])
    if kustomization.get("namespace"):
        for res in ctx.resources:
            if res.kind not in CLUSTER_SCOPED:
                res.doc["metadata"]["namespace"] = kustomization["namespace"]
    prefix, suffix = kustomization.get("namePrefix", ""), kustomization.get("nameSuffix", "")
    if prefix or suffix:
        for res in ctx.resources:
            if res.kind not in ("Namespace", "CustomResourceDefinition"):
                rename(ctx.resources, res, f"{prefix}{res.name}{suffix}")
    for entry in kustomization.get("labels") or []:
        _apply_labels(ctx.resources, entry)
    _apply_images(ctx.resources, kustomization.get("images") or [])
    for replica in kustomization.get("replicas") or []:
        for res in ctx.resources:
            if res.name == replica["name"] and res.kind in WORKLOADS:
                res.doc["spec"]["replicas"] = replica["count"]


# --- building ---

def _read(root: Path, relative: str) -> str:
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:  # kustomize's load restrictor: files only below the kustomization
        raise PermissionError(f"{relative}: outside {root}")
    return path.read_text()


def _kustomization(directory: Path) -> dict:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).exists():
            data = yaml.safe_load((directory / name).read_text()) or {}
            unsupported = set(data) - SUPPORTED_FIELDS
            if unsupported:
                raise NotImplementedError(f"{directory}: kustomization fields {sorted(unsupported)}")
            return data
    raise FileNotFoundError(f"no kustomization in {directory}")


def _accumulate(ctx: _Context, kustomization: dict) -> None:
    for entry in kustomization.get("resources") or []:
        path = (ctx.root / entry).resolve()
        if path.is_dir():
            ctx.resources.extend(_build(path))
        else:
            ctx.resources.extend(Res(doc) for doc in yaml.safe_load_all(path.read_text()) if doc)


def _build(directory: Path) -> list[Res]:
    kustomization = _kustomization(directory)
    ctx = _Context(directory)
    _accumulate(ctx, kustomization)
    for component in kustomization.get("components") or []:
        sub = (directory / component).resolve()
        component_kustomization = _kustomization(sub)
        if component_kustomization.get("kind") != "Component":
            raise ValueError(f"{sub} is not a Component")
        sub_ctx = _Context(sub, ctx.resources)  # a component works on its parent's resources
        _accumulate(sub_ctx, component_kustomization)
        _run_generators(sub_ctx, component_kustomization)
        _run_transformers(sub_ctx, component_kustomization)
    _run_generators(ctx, kustomization)
    _run_transformers(ctx, kustomization)
    return ctx.resources


def build(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize <directory>` prints, in no particular order."""
    resources = _build(Path(directory))
    for res in resources:
        if res.generated and res.hash_suffix:
            rename(resources, res, f"{res.name}-{content_hash(res.doc)}")
    ids = [(r.kind, r.doc["metadata"].get("namespace"), r.name) for r in resources]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"objects with the same id: {sorted(map(str, duplicates))}")
    return [r.doc for r in resources]
