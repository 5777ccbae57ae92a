"""No gateway route reaches TorchServe's management API, whatever the path, its encoding or the protocol.

Each attempt carries a marker of its own, in its path or query. Afterwards TorchServe's logs (its access
log records every request line it receives, on either API) must hold none of the markers, the registered
models must be unchanged, and no answer may be TorchServe's. A control sends one marker to the management
API directly and finds it in the logs: the check sees what reaches TorchServe.
"""

from __future__ import annotations

import socket

import grpc
import pytest

from .conftest import MODEL, marker, registered, torchserve_logs, wait_for_access_log, workers

# TorchServe's management calls (HTTP paths; {m} is the marker), and path tricks that a proxy might resolve
# differently from the router: dot segments plain and encoded, backslashes, doubled slashes, encoded
# separators inside a model or version name, Triton's model repository extension.
REST_ATTEMPTS = [
    ("POST", "/models?url={m}.mar&initial_workers=1&synchronous=true"),
    ("POST", "/models?url=http://127.0.0.1:1/{m}.mar"),
    ("PUT", f"/models/{MODEL}?min_worker=3&{{m}}=1"),
    ("DELETE", f"/models/{MODEL}?{{m}}=1"),
    ("DELETE", f"/models/{MODEL}/1.0?{{m}}=1"),
    ("GET", f"/models/{MODEL}/all?{{m}}=1"),
    ("GET", "/token?type=management&{m}=1"),
    ("OPTIONS", "/?{m}=1"),
    ("GET", "/api-description?{m}=1"),
    ("GET", "/../models?{m}=1"),
    ("GET", "/%2e%2e/models?{m}=1"),
    ("GET", "/predict/..%2F..%2Fmodels?{m}=1"),
    ("POST", "/predict/..%2f..%2fmodels%3Furl%3D{m}.mar"),
    ("POST", "/predict/%2e%2e/%2e%2e/models?url={m}.mar"),
    ("POST", f"/predict/{MODEL}/..%2F..%2Fmodels%3Furl%3D{{m}}.mar"),
    ("POST", f"/predict/{MODEL}%3Furl%3D{{m}}.mar"),
    ("POST", f"/predict/{MODEL};/models?url={{m}}.mar"),
    ("POST", "/predict/..\\..\\models?url={m}.mar"),
    ("GET", "//127.0.0.1/models?{m}=1"),
    ("DELETE", f"/predict/{MODEL}?{{m}}=1"),
    ("GET", "/v2/repository/index?{m}=1"),
    ("POST", f"/v2/repository/models/{MODEL}/load?{{m}}=1"),
    ("POST", f"/v2/repository/models/{MODEL}/unload?{{m}}=1"),
    ("POST", f"/v2/models/..%2F..%2Fmodels/infer?{{m}}=1"),
    ("GET", "/docs/../models?{m}=1"),
]
TORCHSERVE_ANSWERS = ('"modelName"', '"modelUrl"', "InvalidKeyException", "Model \\\"", "registered successfully",
                      "Processing worker updates", "\"status\": \"Healthy\"")


def raw_http(port: int, request_line: str, host: str | None = None) -> tuple[int, str]:
    """One request over a plain socket, so that the path reaches the server exactly as written (HTTP
    clients normalize dot segments away). Status 0: the server closed without an answer (refused too)."""
    head = f"{request_line}\r\nHost: {host or f'127.0.0.1:{port}'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data.decode("latin-1")


@pytest.fixture(scope="module")
def served(torchserve, management, gateway) -> tuple[set[str], list[str]]:
    """The model registered (through the gateway's own first use); what TorchServe has before the attempts."""
    assert gateway.predict(MODEL).status_code == 200
    return registered(torchserve, management), workers(torchserve, management, MODEL)


def assert_not_torchserves(status: int, text: str, what: str) -> None:
    assert not any(answer in text for answer in TORCHSERVE_ANSWERS), f"{what}: {text[:300]}"
    # the gateway's own catalog answers GET /models; nothing else of these may succeed
    assert status == 0 or 400 <= status < 500 or (status == 200 and what.startswith("GET /models")), \
        f"{what}: {status} {text[:300]}"


def test_rest_never_reaches_management(torchserve, management, inference, gateway, served):
    port = int(gateway.url.rsplit(":", 1)[1])
    markers = []
    for method, template in REST_ATTEMPTS:
        markers.append(m := marker("rest"))
        line = f"{method} {template.format(m=m)} HTTP/1.1"
        status, text = raw_http(port, line)
        assert_not_torchserves(status, text.split("\r\n\r\n", 1)[-1], line)
    # a request in absolute form, or addressed to TorchServe by its Host header, is still the gateway's
    target = torchserve.management_url.split("//")[1]
    abs_marker, host_marker = marker("abs"), marker("host")
    markers += [abs_marker, host_marker]
    for line, host in [(f"GET {torchserve.management_url}/models?{abs_marker}=1 HTTP/1.1", None),
                       (f"GET /models?{host_marker}=1 HTTP/1.1", target),
                       (f"CONNECT {target} HTTP/1.1", target)]:
        status, text = raw_http(port, line, host)
        assert_not_torchserves(status, text.split("\r\n\r\n", 1)[-1], f"GET /models (as {line!r}, host {host})")
    assert_never_reached(torchserve, management, inference, served, markers)


def assert_never_reached(torchserve, management, inference, served, markers: list[str]) -> None:
    wait_for_access_log(torchserve, inference)
    logs = torchserve_logs(torchserve)
    assert [m for m in markers if m in logs] == []
    # nothing registered, unregistered, scaled or restarted
    assert (registered(torchserve, management), workers(torchserve, management, MODEL)) == served


GRPC_ATTEMPTS = [
    "/org.pytorch.serve.grpc.management.ManagementAPIsService/RegisterModel",
    "/org.pytorch.serve.grpc.management.ManagementAPIsService/UnregisterModel",
    "/org.pytorch.serve.grpc.management.ManagementAPIsService/ListModels",
    "/org.pytorch.serve.grpc.management.ManagementAPIsService/ScaleWorker",
    "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions",
    "/inference.GRPCInferenceService/RepositoryIndex",
    "/inference.GRPCInferenceService/RepositoryModelLoad",
    "/inference.GRPCInferenceService/RepositoryModelUnload",
]


def test_grpc_never_reaches_management(torchserve, management, inference, gateway, served):
    markers = []
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        for method in GRPC_ATTEMPTS:
            markers.append(m := marker("grpc"))
            call = channel.unary_unary(method)
            # field 9 of RegisterModelRequest is url, field 1 of the v2 requests is a name: a string either way
            body = b"\x4a" + bytes([len(m) + 4]) + f"{m}.mar".encode()
            with pytest.raises(grpc.RpcError) as refused:
                call(body, metadata=(("x-marker", m),), timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, method
    assert_never_reached(torchserve, management, inference, served, markers)


def test_the_check_sees_what_reaches_management(torchserve, management, inference):
    """Control: a marker sent to the management API directly is in TorchServe's logs."""
    m = marker("control")
    management.request("GET", "/models", torchserve.keys().management, params={m: "1"})
    wait_for_access_log(torchserve, inference)
    assert m in torchserve_logs(torchserve)


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent: UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_torchserve_listens_on_loopback_only(torchserve):
    """From the machine's own network address, none of TorchServe's APIs answers; from loopback, all do."""
    address = outward_address()
    if address is None:
        pytest.skip("no network interface besides loopback")
    ports = torchserve.ports
    for port in (ports.inference, ports.management, ports.metrics, ports.grpc_inference, ports.grpc_management):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=5).close()
