"""What the zooserve image does in a container besides `python -m zooserve.serve` / `python -m zooserve.gateway`.

    python deploy/container.py torchserve        TorchServe alone, in its working directory (ZOO_TS_WORKDIR)
    python deploy/container.py keyproxy          nginx in front of that TorchServe, adding its tokens
    python deploy/container.py models            the archives this TorchServe loads at start, one a line
    python deploy/container.py health [--ready]  the Docker HEALTHCHECK and Kubernetes probe of ZOO_ROLE

Only the standard library: it runs in the image and in the tests alike (tests/deploy).

Why a key proxy: TorchServe writes fresh random tokens to key_file.json in its working directory each time it
starts, so every replica of a model group has its own. A gateway in another pod cannot hold the keys of
replicas that a Service picks at random, so in Kubernetes an nginx beside each TorchServe (same pod, same
emptyDir) adds that replica's tokens; TorchServe itself stays on loopback with token authorization on, and a
NetworkPolicy lets only the gateway reach the proxy. docs/deploy.md has the whole picture.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = "/var/lib/zooserve/torchserve"
PROXY_TEMPLATE = Path(__file__).resolve().parent / "keyproxy" / "nginx.conf.template"
# TorchServe's logs to stdout (`docker logs`, `kubectl logs`) instead of files in its working directory
LOG_CONFIG = Path(__file__).resolve().parent / "torchserve" / "log4j2.xml"
ROUTE_PREFIX = "ZOO_ROUTES__"  # the gateway's routing table, one variable per model (pydantic-settings style)
# The variables of the container roles (this file and entrypoint.sh), beside the gateway's ZOO_* settings:
CONTAINER_VARIABLES = (
    "ZOO_ROLE",                   # serve, gateway, torchserve or keyproxy
    "ZOO_GROUP",                  # torchserve: the model group whose routed models it loads at start
    "ZOO_TS_PRELOAD",             # torchserve: "false" to start empty (the gateway loads on first use)
    "ZOO_TS_CONFIG",              # torchserve: the config file (default: zooserve/configs/torchserve.properties)
    "ZOO_TS_WORKDIR",             # torchserve, keyproxy: TorchServe's working directory (its key file)
    "ZOO_TS_LOG_CONFIG",          # torchserve: TorchServe's log4j2 config (default: deploy/torchserve/log4j2.xml)
    "ZOO_MODEL_STORE",            # torchserve: the archives (default: the repo's model_store/)
    "ZOO_PROXY_DIR",              # keyproxy: where nginx's config and temporary files go
    "ZOO_PROXY_INFERENCE_PORT",   # keyproxy: 9080
    "ZOO_PROXY_MANAGEMENT_PORT",  # keyproxy: 9081
    "ZOO_PROXY_GRPC_PORT",        # keyproxy: 9070
)


def env_path(name: str, default: str | Path) -> Path:
    return Path(os.environ.get(name) or default)


def workdir() -> Path:
    """TorchServe's working directory: its key_file.json, config and pid file (a volume shared in the pod)."""
    return env_path("ZOO_TS_WORKDIR", DEFAULT_WORKDIR)


def model_store() -> Path:
    return env_path("ZOO_MODEL_STORE", ROOT / "model_store")


# --- which models a TorchServe of a model group loads ---

def routes(env: dict[str, str]) -> dict[str, str]:
    """ZOO_ROUTES__<model>=<backend> as the gateway reads them (names are case-insensitive there)."""
    return {k[len(ROUTE_PREFIX):].lower(): v for k, v in env.items() if k.upper().startswith(ROUTE_PREFIX)}


def backend_for(model: str, table: dict[str, str], default: str) -> str:
    """The same rule as zooserve.gateway.settings.Settings.backend_for: first matching route, else the default."""
    return next((backend for pattern, backend in table.items() if fnmatch.fnmatchcase(model, pattern)), default)


def group_models(env: dict[str, str], store: Path) -> list[str] | None:
    """The models the gateway sends to this group (ZOO_GROUP), so the ones its TorchServe must load at start.

    None when ZOO_GROUP is unset or ZOO_TS_PRELOAD is false: TorchServe starts empty and the gateway registers
    models on first use, unloading the least recently used under its memory budget (compose, a single
    container, a laptop cluster). That only works with one replica behind an address: a Service would send
    the registration to one replica and the predictions to any. The default backend's group also serves every
    archive no route names, so a model new to the zoo is served without touching the routing table.
    """
    group = env.get("ZOO_GROUP")
    if not group or env.get("ZOO_TS_PRELOAD", "true").lower() in ("0", "false", "no"):
        return None
    table = routes(env)
    default = env.get("ZOO_DEFAULT_BACKEND", "local")
    archives = sorted(p.stem for p in store.glob("*.mar"))
    missing = sorted(m for m, g in table.items() if g == group and not any(c in m for c in "*?[") and m not in archives)
    if missing:
        raise SystemExit(f"group {group!r}: no archive in {store} for routed model(s) {', '.join(missing)}")
    return [name for name in archives if backend_for(name, table, default) == group]


# --- TorchServe's configuration, as TorchServe itself resolves it ---

def read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()  # later lines win, as in java.util.Properties
    return props


def write_config(directory: Path, env: dict[str, str], models: list[str] | None) -> Path:
    """TorchServe's config for this container, fully resolved, so the proxy and the probes read what it reads.

    The repo's config (or ZOO_TS_CONFIG, e.g. a Kubernetes ConfigMap), then any TS_<KEY> variable as <key>
    (the convention of TorchServe's own enable_envvars_config, e.g. TS_METRICS_ADDRESS in compose), then the
    model store and the models to load at start.
    """
    template = env_path("ZOO_TS_CONFIG", ROOT / "zooserve" / "configs" / "torchserve.properties")
    props = read_properties(template)
    props |= {key[3:].lower(): value for key, value in env.items() if key.startswith("TS_") and key != "TS_CONFIG_FILE"}
    props["model_store"] = str(model_store())
    if models:
        props["load_models"] = ",".join(f"{name}.mar" for name in models)
    problems = insecure_settings(props)
    if problems:  # a TS_* variable or another config file must not open TorchServe up: refuse to start
        raise SystemExit(f"refusing to start TorchServe with {template} and the TS_* environment: "
                         + "; ".join(problems))
    path = directory / "config.properties"
    header = f"# written by deploy/container.py from {template} and the TS_* environment\n"
    path.write_text(header + "".join(f"{key}={value}\n" for key, value in props.items()))
    return path


LOOPBACK = ("127.0.0.1", "localhost", "::1")
# what allowed_urls must refuse: archives come from the local model store only, never fetched from anywhere
REMOTE_ARCHIVES = ("http://example.com/m.mar", "https://example.com/m.mar", "file:///tmp/m.mar", "s3://b/m.mar")


def insecure_settings(props: dict[str, str]) -> list[str]:
    """What in this TorchServe config would expose it (empty when nothing does); docs/security.md says why.

    Token authorization on; the inference and management APIs (HTTP and gRPC) on loopback, where only the
    gateway or the pod's key proxy reaches them; no archive from a URL; no configuration from TorchServe's
    own reading of TS_* variables, which would bypass this check. The metrics address may be opened.
    """
    problems = []
    if props.get("disable_token_authorization", "false").strip().lower() != "false":
        problems.append("token authorization must stay on (disable_token_authorization=false)")
    if props.get("enable_envvars_config", "false").strip().lower() != "false":
        problems.append("enable_envvars_config must stay false (TS_* variables are resolved here)")
    for key in ("inference_address", "management_address"):
        if urlsplit(props.get(key, "")).hostname not in LOOPBACK:
            problems.append(f"{key} must be on loopback, not {props.get(key)!r}")
    for key in ("grpc_inference_address", "grpc_management_address"):
        if props.get(key) not in LOOPBACK:
            problems.append(f"{key} must be on loopback, not {props.get(key)!r}")
    patterns = [p for p in props.get("allowed_urls", ".*").split(",") if p]
    fetched = [u for u in REMOTE_ARCHIVES if any(re.fullmatch(p, u, re.IGNORECASE) for p in patterns)]
    if fetched or "allowed_urls" not in props:  # TorchServe's default allows every http(s) and file URL
        problems.append(f"allowed_urls must refuse remote archives ({', '.join(fetched) or 'unset'})")
    return problems


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), parts.port or 80


def read_keys(directory: Path) -> dict[str, str] | None:
    try:
        data = json.loads((directory / "key_file.json").read_text())
        return {"inference": data["inference"]["key"], "management": data["management"]["key"]}
    except (OSError, ValueError, KeyError, TypeError):  # not written yet, or being written
        return None


# --- roles ---

def run_torchserve() -> None:
    directory = workdir()
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    # a restarted container must not leave the old keys (or pid file) for the gateway or the proxy to read
    (directory / "key_file.json").unlink(missing_ok=True)
    (directory / "tmp" / ".model_server.pid").unlink(missing_ok=True)
    env = dict(os.environ)
    models = group_models(env, model_store())
    config = write_config(directory, env, models)
    print(f"TorchServe in {directory} with {config}; loading at start: {', '.join(models or []) or 'nothing'}",
          flush=True)
    env |= {
        "TMPDIR": str(directory / "tmp"),  # TorchServe's pid file; Java unpacks archives in /tmp (java.io.tmpdir)
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    }
    os.chdir(directory)  # TorchServe writes key_file.json into its working directory
    command = ["torchserve", "--start", "--foreground", "--ncs", "--ts-config", str(config),
               "--model-store", str(model_store()), "--log-config", str(env_path("ZOO_TS_LOG_CONFIG", LOG_CONFIG))]
    os.execvpe(command[0], command, env)


def render_proxy(keys: dict[str, str], props: dict[str, str], proxy_dir: Path) -> Path:
    """nginx.conf for the key proxy: TorchServe's loopback addresses, its tokens, and our listening ports."""
    inference = address(props.get("inference_address", "http://127.0.0.1:8080"))
    management = address(props.get("management_address", "http://127.0.0.1:8081"))
    grpc_host = props.get("grpc_inference_address", "127.0.0.1")
    values = {
        "PROXY_DIR": str(proxy_dir),
        "INFERENCE_UPSTREAM": f"{inference[0]}:{inference[1]}",
        "MANAGEMENT_UPSTREAM": f"{management[0]}:{management[1]}",
        "GRPC_UPSTREAM": f"{'127.0.0.1' if grpc_host in ('0.0.0.0', '::') else grpc_host}:"
                         f"{props.get('grpc_inference_port', '7070')}",
        "INFERENCE_PORT": os.environ.get("ZOO_PROXY_INFERENCE_PORT", "9080"),
        "MANAGEMENT_PORT": os.environ.get("ZOO_PROXY_MANAGEMENT_PORT", "9081"),
        "GRPC_PORT": os.environ.get("ZOO_PROXY_GRPC_PORT", "9070"),
        "INFERENCE_KEY": keys["inference"],
        "MANAGEMENT_KEY": keys["management"],
        "MAX_BODY": props.get("max_request_size", "26214400"),
    }
    for sub in ("client_body", "proxy", "grpc"):
        (proxy_dir / sub).mkdir(parents=True, exist_ok=True)
    path = proxy_dir / "nginx.conf"
    path.write_text(string.Template(PROXY_TEMPLATE.read_text()).substitute(values))
    path.chmod(0o600)  # it holds the tokens
    return path


def run_keyproxy(poll_s: float = 2.0) -> int:
    """nginx with TorchServe's current tokens; re-rendered and reloaded whenever TorchServe writes new ones."""
    directory = workdir()
    proxy_dir = env_path("ZOO_PROXY_DIR", "/tmp/keyproxy")
    config = directory / "config.properties"
    waited = 0.0
    while (keys := read_keys(directory)) is None or not config.exists():
        if waited % 30 == 0:
            print(f"keyproxy: waiting for TorchServe's key file in {directory}", flush=True)
        time.sleep(0.5)
        waited += 0.5
    conf = render_proxy(keys, read_properties(config), proxy_dir)
    nginx = subprocess.Popen(["nginx", "-e", "stderr", "-p", str(proxy_dir), "-c", str(conf), "-g", "daemon off;"])
    # SIGTERM: nginx's graceful stop is SIGQUIT (finish the requests in flight)
    signal.signal(signal.SIGTERM, lambda *_: nginx.send_signal(signal.SIGQUIT))
    while nginx.poll() is None:
        time.sleep(poll_s)
        fresh = read_keys(directory)
        if fresh is not None and fresh != keys and config.exists():
            keys = fresh
            render_proxy(keys, read_properties(config), proxy_dir)
            nginx.send_signal(signal.SIGHUP)  # reload the configuration: TorchServe restarted with new tokens
            print("keyproxy: TorchServe's tokens changed; nginx reloaded", flush=True)
    return nginx.returncode


def http_status(url: str, token: str | None = None, timeout: float = 3.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error).encode()


# TorchServe's /ping answers 500 once any one model's worker has kept failing for its maxRetryTimeoutInSec: the
# frontend is alive and serves the other models, and it keeps restarting that worker (the gateway answers 503
# for that model alone), so a probe that restarted or unreadied the container would take every model down
ALIVE = (200, 500)


def check_torchserve(ready: bool) -> str | None:
    """None when healthy, else why not. Healthy: the frontend answers /ping. Ready (the startup check): also
    every model of the group has a READY worker."""
    directory = workdir()
    keys, config = read_keys(directory), directory / "config.properties"
    if keys is None or not config.exists():
        return f"no key file or config in {directory} yet"
    env = dict(os.environ)
    props = read_properties(config)
    host, port = address(props.get("inference_address", "http://127.0.0.1:8080"))
    status, body = http_status(f"http://{host}:{port}/ping", keys["inference"])
    if status not in ALIVE:
        return f"/ping answered {status}: {body[:200]!r}"
    if not ready:
        return None
    host, port = address(props.get("management_address", "http://127.0.0.1:8081"))
    for name in group_models(env, model_store()) or []:
        status, body = http_status(f"http://{host}:{port}/models/{name}", keys["management"])
        workers = json.loads(body)[0].get("workers", []) if status == 200 else []
        if not any(w.get("status") == "READY" for w in workers):
            return f"model {name} has no READY worker yet (status {status})"
    return None


def check(role: str, ready: bool) -> str | None:
    if role in ("serve", "gateway"):
        port = os.environ.get("ZOO_REST_PORT", "8000")
        status, body = http_status(f"http://127.0.0.1:{port}/{'readyz' if ready else 'healthz'}")
        return None if status == 200 else f"gateway answered {status}: {body[:200]!r}"
    if role == "torchserve":
        return check_torchserve(ready)
    if role == "keyproxy":  # through the proxy without a token: fails while its tokens are stale
        port = os.environ.get("ZOO_PROXY_INFERENCE_PORT", "9080")
        status, body = http_status(f"http://127.0.0.1:{port}/ping")
        return None if status in ALIVE else f"proxy /ping answered {status}: {body[:200]!r}"
    return f"unknown role {role!r}"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "torchserve":
        run_torchserve()
    if command == "keyproxy":
        return run_keyproxy()
    if command == "models":
        print("\n".join(group_models(dict(os.environ), model_store()) or []))
        return 0
    if command == "health":
        problem = check(os.environ.get("ZOO_ROLE", "serve"), ready="--ready" in argv)
        if problem:
            print(problem, file=sys.stderr)
        return 1 if problem else 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
