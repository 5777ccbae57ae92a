"""What the gateway adds to a request, at p50 and p99, for each protocol, to sub-millisecond resolution.

Locust reports latencies over 100 ms rounded to 10 ms, too coarse for an overhead of a millisecond, so
this measures with ``time.perf_counter`` in one sequential client: the same photograph sent to the same
model straight to TorchServe (REST and its gRPC API) and through the gateway (REST, gRPC, v2 REST, v2
gRPC). Each round sends one request on every path, in a shuffled order, so that every path sees the same
machine at the same moments (a drift of the machine's speed over seconds, which blocks of requests per
path turned into differences between paths, falls on all alike). The overhead of a gateway protocol is
its p50 minus TorchServe's over the same kind of transport (REST minus REST, gRPC minus gRPC), so the
client library's own cost cancels out; its 95% interval comes from resampling the rounds (bootstrap).
"""

from __future__ import annotations

import base64
import random
import statistics
import time
from collections.abc import Callable

import grpc
import httpx

from zooserve._proto import (
    open_inference_pb2,
    open_inference_pb2_grpc,
    torchserve_pb2,
    torchserve_pb2_grpc,
    zooserve_pb2,
    zooserve_pb2_grpc,
)
from zooserve.gateway.experiments.stats import percentile

BOOTSTRAP_RESAMPLES = 1000
# gateway path -> the direct TorchServe path over the same transport
BASELINES = {"gateway REST": "TorchServe REST", "gateway gRPC": "TorchServe gRPC",
             "gateway v2 REST": "TorchServe REST", "gateway v2 gRPC": "TorchServe gRPC"}


class Paths:
    """One callable per path; each sends the image once and raises unless the answer is a prediction."""

    def __init__(self, model: str, image: bytes, rest: str, grpc_target: str, ts_url: str, ts_grpc: str,
                 token: str) -> None:
        self.model, self.image = model, image
        self.ts_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
        self.ts_metadata = (("authorization", f"Bearer {token}"),)
        self.http = httpx.Client(timeout=120)
        self.rest, self.ts_url = rest, ts_url
        self.channels = [grpc.insecure_channel(grpc_target), grpc.insecure_channel(ts_grpc)]
        self.zoo_pb = zooserve_pb2
        zoo = zooserve_pb2_grpc
        self.ts_pb = torchserve_pb2
        ts = torchserve_pb2_grpc
        self.v2_pb = open_inference_pb2
        v2 = open_inference_pb2_grpc
        self.zoo = zoo.ZooServiceStub(self.channels[0])
        self.v2 = v2.GRPCInferenceServiceStub(self.channels[0])
        self.ts = ts.InferenceAPIsServiceStub(self.channels[1])

    def all(self) -> dict[str, Callable[[], None]]:
        return {"TorchServe REST": self.torchserve_rest, "TorchServe gRPC": self.torchserve_grpc,
                "gateway REST": self.gateway_rest, "gateway gRPC": self.gateway_grpc,
                "gateway v2 REST": self.v2_rest, "gateway v2 gRPC": self.v2_grpc}

    def torchserve_rest(self) -> None:
        answer = self.http.post(f"{self.ts_url}/predictions/{self.model}", content=self.image, headers=self.ts_headers)
        assert answer.status_code == 200 and answer.json()["predictions"], answer.text[:200]

    def torchserve_grpc(self) -> None:
        reply = self.ts.Predictions(self.ts_pb.PredictionsRequest(model_name=self.model, input={"data": self.image}),
                                    metadata=self.ts_metadata, timeout=120)
        assert b'"predictions"' in reply.prediction, reply.prediction[:200]

    def gateway_rest(self) -> None:
        answer = self.http.post(f"{self.rest}/predict/{self.model}", content=self.image,
                                headers={"Content-Type": "image/jpeg"})
        assert answer.status_code == 200 and answer.json()["predictions"], answer.text[:200]

    def gateway_grpc(self) -> None:
        reply = self.zoo.Predict(self.zoo_pb.PredictRequest(model=self.model, image=self.image), timeout=120)
        assert reply.predictions

    def v2_rest(self) -> None:
        payload = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                               "data": [base64.b64encode(self.image).decode()]}]}
        answer = self.http.post(f"{self.rest}/v2/models/{self.model}/infer", json=payload)
        assert answer.status_code == 200 and answer.json()["outputs"], answer.text[:200]

    def v2_grpc(self) -> None:
        tensor = self.v2_pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
        tensor.contents.bytes_contents.append(self.image)
        reply = self.v2.ModelInfer(self.v2_pb.ModelInferRequest(model_name=self.model, inputs=[tensor]), timeout=120)
        assert reply.outputs

    def close(self) -> None:
        self.http.close()
        for channel in self.channels:
            channel.close()


def measure(paths: Paths, requests: int, seed: int = 0) -> dict:
    """Per path: p50/p99/mean in ms over ``requests`` rounds; per gateway path: its added p50 (with a 95%
    interval) and p99."""
    calls = paths.all()
    for call in calls.values():  # warm-up: connections, channels, caches
        for _ in range(5):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order, shuffle = list(calls), random.Random(seed).shuffle
    for _ in range(requests):
        shuffle(order)  # no path always follows the same one
        for name in order:
            started = time.perf_counter()
            calls[name]()
            samples[name].append(1e3 * (time.perf_counter() - started))
    latency = {name: {"p50_ms": round(statistics.median(s), 3), "p99_ms": round(percentile(s, 99), 3),
                      "mean_ms": round(statistics.fmean(s), 3), "requests": len(s)} for name, s in samples.items()}
    added = {}
    for name, base in BASELINES.items():
        low, high = added_p50_interval(samples[name], samples[base], random.Random(seed))
        added[name] = {"against": base, "p50_ms": round(latency[name]["p50_ms"] - latency[base]["p50_ms"], 3),
                       "p50_ci95_ms": [round(low, 3), round(high, 3)],
                       "p99_ms": round(latency[name]["p99_ms"] - latency[base]["p99_ms"], 3)}
    return {"model": paths.model, "latency": latency, "added": added}


def added_p50_interval(path: list[float], base: list[float], rng: random.Random) -> tuple[float, float]:
    """95% bootstrap interval of p50(path) - p50(base): rounds resampled with replacement, the two samples
    of a round kept together."""
    rounds = len(path)
    differences = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        picks = [rng.randrange(rounds) for _ in range(rounds)]
        differences.append(statistics.median([path[i] for i in picks]) - statistics.median([base[i] for i in picks]))
    differences.sort()
    return differences[int(0.025 * BOOTSTRAP_RESAMPLES)], differences[int(0.975 * BOOTSTRAP_RESAMPLES) - 1]
