"""``zooserve serve`` (or ``python -m zooserve.serve``): TorchServe and the gateway together, as ``make serve``
runs them.

Builds the archives missing from the store (and the catalog snapshot beside them, which the gateway reads
unless ZOO_CATALOG_PATH names another), starts TorchServe on loopback (its addresses and key directory are
the default backend's, from the same ZOO_* settings the gateway reads), then serves REST and gRPC until
Ctrl-C (SIGINT) or SIGTERM, and stops both: the gateway first, letting in-flight requests finish, then
TorchServe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from zooserve.gateway import logs
from zooserve.gateway.__main__ import serve
from zooserve.gateway.server import GatewayServer
from zooserve.gateway.settings import DEFAULT_TORCHSERVE_DIR, BackendSettings, Settings
from zooserve.snapshot import FILE_NAME
from zooserve.store.__main__ import main as build_archives
from zooserve.store.build import DEFAULT_STORE
from zooserve.torchserve import TorchServe, TorchServePorts

LOOPBACK = {"127.0.0.1", "localhost"}


def torchserve_for(backend: BackendSettings, metrics_port: int, grpc_management_port: int,
                   store: Path) -> TorchServe:
    """A TorchServe answering at the backend's addresses, on loopback only."""
    inference, management = urlsplit(backend.inference_url), urlsplit(backend.management_url)
    grpc_host, _, grpc_port = backend.grpc_address.rpartition(":")
    hosts = {inference.hostname, management.hostname, grpc_host}
    if not hosts <= LOOPBACK:
        raise SystemExit(f"serve runs TorchServe on this machine: the default backend must be on 127.0.0.1, "
                         f"not {', '.join(sorted(hosts - LOOPBACK))}")
    ports = TorchServePorts(inference=inference.port, management=management.port, metrics=metrics_port,
                            grpc_inference=int(grpc_port), grpc_management=grpc_management_port)
    auth = {} if backend.key_dir else {"disable_token_authorization": "true"}
    return TorchServe(backend.key_dir or DEFAULT_TORCHSERVE_DIR, store, ports, **auth)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zooserve serve", description="TorchServe and the gateway together.")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model archives (built where missing)")
    parser.add_argument("--models", nargs="*", help="archives to build if missing (default: every model)")
    parser.add_argument("--metrics-port", type=int, default=TorchServePorts.metrics, help="TorchServe's metrics")
    parser.add_argument("--grpc-management-port", type=int, default=TorchServePorts.grpc_management)
    return parser


def _print_usage(server: GatewayServer) -> None:
    host, rest = server.settings.host, f"http://{server.settings.host}:{server.rest_port}"
    print(f"""
Send requests to:
  curl -H 'Content-Type: image/jpeg' --data-binary @tests/data/chelsea.jpg {rest}/predict/resnet18
  curl -F image=@tests/data/chelsea.jpg '{rest}/predict/squeezenet1_0?topk=3'
  {rest}/models (the catalog)   {rest}/docs (OpenAPI)   {rest}/metrics
  gRPC zooserve.v1.ZooService at {host}:{server.grpc_port} (reflection is on: grpcurl -plaintext ... list)
A model loads on its first request (seconds; minutes for the heavy ones). Ctrl-C stops everything.
""", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_format)
    if "catalog_path" not in settings.model_fields_set:  # the snapshot beside the archives served
        settings = settings.model_copy(update={"catalog_path": args.store / FILE_NAME})
    build = ["build", *(args.models or ["--all"]), "--if-missing", "--store", str(args.store)]
    if build_archives(build) != 0:
        return 2
    backend = settings.backends[settings.default_backend]
    torchserve = torchserve_for(backend, args.metrics_port, args.grpc_management_port, args.store)
    print(f"starting TorchServe (logs in {torchserve.workdir})", flush=True)
    try:
        torchserve.start()
        serve(settings, on_ready=_print_usage)
    except KeyboardInterrupt:  # Ctrl-C before the gateway took over the signals
        pass
    finally:
        torchserve.stop()
        print("TorchServe stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
