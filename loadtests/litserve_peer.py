"""LitServe serving a zoo model on eager PyTorch, as its documentation shows image classification: the
peer `make bench` puts beside our stack for Python serving.

    python -m loadtests.litserve_peer --model resnet50 --port 18700 [--workers 2]

What it runs: ``litserve.LitServer`` on the CPU with ``workers_per_device`` workers (torch threads:
cores / workers each) and LitServe's own batching (``max_batch_size`` 4, ``batch_timeout`` 5 ms, as our
archives batch); each request a multipart form with the photograph as ``image`` (LitServe reads forms
or JSON, not raw bodies), decoded with PIL and transformed by torchvision's eval transform (resize,
centre crop, to tensor, normalize, as the model's config says); the same fixed-seed weights as our
archives, channels_last, ``inference_mode``; the top-5 probabilities answered as JSON.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import litserve as ls
import torch
from PIL import Image
from torchvision import transforms

from zooserve.zoo import create_model, model_info

ROOT = Path(__file__).resolve().parents[1]
MAX_BATCH_SIZE = 4
BATCH_TIMEOUT_S = 0.005
INTERPOLATION = {"bilinear": transforms.InterpolationMode.BILINEAR, "bicubic": transforms.InterpolationMode.BICUBIC}


def eval_transform(name: str) -> transforms.Compose:
    config = model_info(name).preprocess
    size = list(config.input_size[1:])
    interpolation = INTERPOLATION[config.interpolation]
    resize = ([transforms.Resize(config.resize_size, interpolation), transforms.CenterCrop(size)]
              if config.crop_pct < 1 else [transforms.Resize(size, interpolation)])
    return transforms.Compose([*resize, transforms.ToTensor(), transforms.Normalize(config.mean, config.std)])


class ZooClassifier(ls.LitAPI):
    def __init__(self, model: str, threads: int):
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
        self.model_name, self.threads = model, threads

    def setup(self, device) -> None:
        torch.set_num_threads(self.threads)
        self.model = create_model(self.model_name).to(memory_format=torch.channels_last).eval()
        self.transform = eval_transform(self.model_name)

    def decode_request(self, request):
        return self.transform(Image.open(request["image"].file).convert("RGB"))

    def batch(self, inputs):
        return torch.stack(inputs)

    def predict(self, batch):
        with torch.inference_mode():
            return self.model(batch.contiguous(memory_format=torch.channels_last)).softmax(dim=-1).topk(5)

    def unbatch(self, output):
        scores, indices = output
        return list(zip(scores.tolist(), indices.tolist()))

    def encode_response(self, output):
        scores, indices = output
        return {"predictions": [{"index": i, "score": s} for s, i in zip(scores, indices)]}


def start_litserve(model: str, port: int, log: Path, workers: int = 2) -> subprocess.Popen:
    """The server in its own process group (stop it with ``os.killpg``)."""
    command = [sys.executable, "-m", "loadtests.litserve_peer", "--model", model, "--port", str(port),
               "--workers", str(workers)]
    return subprocess.Popen(command, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.litserve_peer", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    server = ls.LitServer(ZooClassifier(args.model, threads), accelerator="cpu", devices=1,
                          workers_per_device=args.workers)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
