"""Starting and reaching a real TorchServe: config with chosen ports, the token key file, readiness.

Used by `make serve`, the tests and the benchmarks alike, so all of them run TorchServe the same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG_TEMPLATE = ROOT / "zooserve" / "configs" / "torchserve.properties"


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TorchServePorts:
    inference: int = 8080
    management: int = 8081
    metrics: int = 8082
    grpc_inference: int = 7070
    grpc_management: int = 7071

    @classmethod
    def free(cls) -> "TorchServePorts":
        """Five ports nothing listens on right now (tests, benchmarks, the demo)."""
        return cls(*(free_port() for _ in range(5)))

    def overrides(self, host: str = "127.0.0.1") -> dict[str, str]:
        return {
            "inference_address": f"http://{host}:{self.inference}",
            "management_address": f"http://{host}:{self.management}",
            "metrics_address": f"http://{host}:{self.metrics}",
            "grpc_inference_port": str(self.grpc_inference),
            "grpc_management_port": str(self.grpc_management),
        }


def read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def write_config(workdir: Path, ports: TorchServePorts, model_store: Path, template: Path | None = CONFIG_TEMPLATE,
                 **extra: str) -> Path:
    """The repo's TorchServe config (or, with ``template=None``, TorchServe's own defaults) with these ports
    and this store, written into ``workdir``."""
    base = read_properties(template) if template else {"metrics_mode": "prometheus", "enable_model_api": "true"}
    props = base | ports.overrides() | {"model_store": str(model_store)} | extra
    path = workdir / "config.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


@dataclass(frozen=True)
class TorchServeKeys:
    """The tokens TorchServe writes to key_file.json when token authorization is on."""

    management: str
    inference: str

    @classmethod
    def read(cls, workdir: Path) -> "TorchServeKeys | None":
        path = workdir / "key_file.json"
        try:
            data = json.loads(path.read_text())
            return cls(management=data["management"]["key"], inference=data["inference"]["key"])
        except (OSError, ValueError, KeyError):  # absent, or still being written
            return None


class TorchServe:
    """A TorchServe process running in its own working directory (where it writes its key file and logs)."""

    def __init__(self, workdir: Path, model_store: Path, ports: TorchServePorts | None = None,
                 template: Path | None = CONFIG_TEMPLATE, env: dict[str, str] | None = None, **config: str):
        self.template = template
        self.env = env or {}  # more environment for TorchServe and its workers (e.g. OMP_NUM_THREADS)
        self.workdir = Path(workdir)
        self.model_store = Path(model_store)
        self.ports = ports or TorchServePorts()
        self.config = config
        self.process: subprocess.Popen | None = None

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.inference}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}"

    def keys(self) -> TorchServeKeys | None:
        return TorchServeKeys.read(self.workdir)

    def start(self, timeout: float = 120) -> "TorchServe":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "key_file.json").unlink(missing_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        config = write_config(self.workdir, self.ports, self.model_store, self.template, **self.config)
        bin_dir = Path(sys.executable).parent
        env = os.environ | {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # workers use this Python
            "LOG_LOCATION": str(self.workdir / "logs"),
            # TorchServe keeps a pid file in the temp dir and refuses to start beside another instance
            "TMPDIR": str(self.workdir / "tmp"),
            "METRICS_LOCATION": str(self.workdir / "logs"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        } | self.env
        command = [
            str(bin_dir / "torchserve"), "--start", "--foreground", "--ncs",
            "--ts-config", str(config), "--model-store", str(self.model_store),
        ]
        self.log = open(self.workdir / "torchserve.out", "ab")
        self.process = subprocess.Popen(
            command, cwd=self.workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"TorchServe exited with {self.process.returncode}; see {self.workdir}")
            if self.ping():
                return
            time.sleep(0.5)
        raise TimeoutError(f"TorchServe not ready after {timeout:.0f} s; see {self.workdir}")

    def ping(self) -> bool:
        """True when the inference API answers /ping (with the inference token when authorization is on)."""
        import httpx  # here, not at the top: the gateway imports this module (TorchServeKeys), its image has no httpx

        keys = self.keys()
        headers = {"Authorization": f"Bearer {keys.inference}"} if keys else {}
        try:
            answer = httpx.get(f"{self.inference_url}/ping", headers=headers, timeout=2, trust_env=False)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the Java frontend and its Python workers
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def __enter__(self) -> "TorchServe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

