"""allowed_urls keeps registration to the local model store: a real TorchServe, asked with its own management
token, refuses an archive from an http(s) or file URL or from a path outside the store.

The remote archive is really there (a valid one, served by an HTTP server of ours that counts connections),
so a refusal is TorchServe's choice, not a download failure; and the server must see no connection at all.
A control registers the same archive from the store, which TorchServe accepts.

One way around allowed_urls is TorchServe's own: it registers an unpacked model directory given by an
absolute path, wherever it is. The key proxy (Kubernetes' only way to the management API) refuses that, and
anything but a store archive's name, which a real nginx in front of our TorchServe shows, with a real
gateway still loading its model through it. docs/security.md has the details.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.deploy.conftest import container, debian_tool
from tests.gateway.conftest import backend_for

from .conftest import MODEL, registered


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves one directory; counts every connection (an HTTPS attempt is a connection too)."""

    def __init__(self, directory: Path):
        handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(directory))  # noqa: E731
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


@pytest.fixture(scope="module")
def outside(secure_store, tmp_path_factory) -> Path:
    """A directory outside the store with valid archives (and one unpacked) under names the store lacks."""
    directory = tmp_path_factory.mktemp("outside_store")
    for name in ("remote_http", "remote_https", "remote_file", "outside_abs", "outside_rel"):
        shutil.copy(secure_store / f"{MODEL}.mar", directory / f"{name}.mar")
    shutil.unpack_archive(secure_store / f"{MODEL}.mar", directory / "outside_dir", format="zip")
    return directory


@pytest.fixture(scope="module")
def archive_server(outside) -> Iterator[ArchiveServer]:
    server = ArchiveServer(outside)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sources(outside: Path, store: Path, port: int) -> dict[str, str]:
    relative = Path("..") / outside.relative_to(store.parent) / "outside_rel.mar"
    return {
        "remote_http": f"http://127.0.0.1:{port}/remote_http.mar",
        "remote_https": f"https://127.0.0.1:{port}/remote_https.mar",
        "remote_file": (outside / "remote_file.mar").as_uri(),
        "outside_abs": str(outside / "outside_abs.mar"),
        "outside_rel": str(relative),
    }


def register(client, token: str | None, url: str, name: str | None = None, **extra: str) -> httpx.Response:
    # not synchronous: what is checked is whether TorchServe takes the archive, not its workers starting
    params = {"url": url} | ({"model_name": name} if name else {}) | extra
    return client.request("POST", "/models", token, params=params | {"synchronous": "false"})


def unregister(torchserve, management, name: str) -> None:
    management.request("DELETE", f"/models/{name}", torchserve.keys().management)


def test_archives_from_outside_the_store_are_refused(torchserve, management, secure_store, outside,
                                                     archive_server):
    before, token = registered(torchserve, management), torchserve.keys().management
    for name, url in sources(outside, secure_store, archive_server.server_port).items():
        response = register(management, token, url, name)
        assert response.status_code >= 400, f"{url}: {response.status_code} {response.text}"
        assert name not in registered(torchserve, management), url
        assert not (secure_store / f"{name}.mar").exists(), f"{url}: downloaded into the store"
    assert archive_server.connections == 0, "TorchServe contacted the URL"
    assert registered(torchserve, management) == before


def test_the_store_itself_is_accepted(torchserve, management):
    """Control: the same archive, named as the gateway names it (a file of the store), registers."""
    response = register(management, torchserve.keys().management, f"{MODEL}.mar", "store_control")
    try:
        assert response.status_code in (200, 202), response.text
        assert "store_control" in registered(torchserve, management)
    finally:
        unregister(torchserve, management, "store_control")


@pytest.mark.xfail(strict=True, reason="TorchServe 0.12 registers an unpacked model directory from any absolute "
                   "path, whatever allowed_urls says; the key proxy refuses it (below), docs/security.md")
def test_torchserve_refuses_a_directory_outside_the_store(torchserve, management, outside):
    """A tripwire: when a TorchServe upgrade closes this, the test passes, strict xfail fails the run, and the
    note in docs/security.md can go."""
    response = register(management, torchserve.keys().management, str(outside / "outside_dir"), "outside_dir")
    unregister(torchserve, management, "outside_dir")
    assert response.status_code >= 400, response.text


# --- the key proxy: Kubernetes' only way to the management API ---

class KeyProxy:
    """The image's keyproxy role (deploy/container.py's nginx config) in front of our TorchServe."""

    def __init__(self, torchserve, directory: Path, monkeypatch):
        self.ports = {"INFERENCE": free_port(), "MANAGEMENT": free_port(), "GRPC": free_port()}
        for kind, port in self.ports.items():
            monkeypatch.setenv(f"ZOO_PROXY_{kind}_PORT", str(port))
        keys = container.read_keys(torchserve.workdir)
        props = container.read_properties(torchserve.workdir / "config.properties")
        config = container.render_proxy(keys, props, directory)
        nginx = debian_tool("nginx", "nginx")
        self.process = subprocess.Popen([nginx, "-e", "stderr", "-p", str(directory), "-c", str(config),
                                         "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        self.management = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['MANAGEMENT']}", timeout=120,
                                       trust_env=False)
        wait_listening(self.ports["MANAGEMENT"])

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.ports[kind]}"

    def close(self) -> None:
        self.management.close()
        self.process.terminate()
        self.process.wait(30)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def proxy(torchserve, tmp_path_factory) -> Iterator[KeyProxy]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        running = KeyProxy(torchserve, tmp_path_factory.mktemp("keyproxy"), monkeypatch)
        yield running
        running.close()


class ProxyClient:
    """The proxy's management port, called as the gateway calls it: no token (the proxy adds it)."""

    def __init__(self, proxy: KeyProxy):
        self.proxy = proxy

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        return self.proxy.management.request(method, path, **kwargs)


def test_the_key_proxy_registers_store_archives_only(torchserve, management, proxy, outside, archive_server):
    client, before = ProxyClient(proxy), registered(torchserve, management)
    refused = {
        "outside_dir": register(client, None, str(outside / "outside_dir")),
        "encoded path": register(client, None, str(outside / "outside_dir").replace("/", "%2F")),
        "remote": register(client, None, f"http://127.0.0.1:{archive_server.server_port}/remote_http.mar"),
        "a handler of our choosing": register(client, None, f"{MODEL}.mar", handler="os:system"),
        "another name": register(client, None, f"{MODEL}.mar", "renamed"),
        "relative path": register(client, None, f"../{MODEL}.mar"),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)
    assert registered(torchserve, management) == before
    assert archive_server.connections == 0


def test_a_gateway_loads_its_model_through_the_key_proxy(torchserve, management, proxy, start_gateway):
    """What the proxy lets through is exactly what the gateway sends: it registers the model on first use."""
    unregister(torchserve, management, MODEL)
    backend = backend_for(torchserve, inference_url=proxy.url("INFERENCE"), management_url=proxy.url("MANAGEMENT"),
                          grpc_address=f"127.0.0.1:{proxy.ports['GRPC']}", key_dir=None)
    # loading starts TorchServe's workers: on a busy 2-core machine that can outlast the default 30 s deadline
    with start_gateway(backend, request_timeout_s=180) as gateway:
        response = gateway.predict(MODEL)
    assert response.status_code == 200, response.text
    assert MODEL in registered(torchserve, management)
