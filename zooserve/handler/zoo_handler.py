"""TorchServe entry point for every zoo archive: initialize / preprocess / inference / postprocess.

TorchServe loads this file from the archive and instantiates its one class. Which architecture to serve,
and how, is the ``zoo:`` section of the archive's model-config.yaml (see ``service.HandlerConfig``).
"""

from __future__ import annotations

import json
import logging

from zooserve.handler.service import ClassifierService, HandlerConfig, Outcome, choose_device

log = logging.getLogger(__name__)
IMAGE_KEYS = ("data", "body", "image")  # raw body, or the multipart/gRPC field holding the image
TOPK_HEADER = "x-topk"


class ZooHandler:
    def __init__(self):
        self.service: ClassifierService | None = None
        self.initialized = False

    def initialize(self, context) -> None:
        properties = context.system_properties
        yaml_config = context.model_yaml_config or {}
        config = HandlerConfig(**yaml_config.get("zoo", {}))
        device = choose_device(properties.get("gpu_id"))
        workers = int(yaml_config.get("maxWorkers", 1))
        batch_size = int(yaml_config.get("batchSize", 1))
        self.service = ClassifierService(config, properties["model_dir"], device, workers=workers,
                                         batch_size=batch_size)
        log.info(
            "zoo model %s loaded on %s with %s in %.2f s (weights: %s)",
            config.model, device, self.service.runtime.name, self.service.load_seconds, config.weights,
        )
        self.initialized = True

    def preprocess(self, data: list[dict], context) -> list[tuple[object, object]]:
        """TorchServe's request dicts to (image bytes, topk) pairs.

        topk comes as a form or gRPC input field, or as an ``X-Topk`` HTTP header (TorchServe drops
        query parameters of prediction requests).
        """
        return [(_first_present(item, IMAGE_KEYS), _topk(item, context, index)) for index, item in enumerate(data)]

    def inference(self, requests: list[tuple[object, object]]) -> list[Outcome]:
        return self.service.classify(requests)

    def postprocess(self, outcomes: list[Outcome], context) -> list[str]:
        for index, outcome in enumerate(outcomes):
            if outcome.status != 200:
                context.set_response_status(outcome.status, outcome.body["error"]["message"], index)
            context.set_response_content_type(index, "application/json")
        return [json.dumps(outcome.body) for outcome in outcomes]

    def handle(self, data: list[dict], context) -> list[str]:
        return self.postprocess(self.inference(self.preprocess(data, context)), context)


def _topk(item: dict, context, index: int):
    if item.get("topk") is not None:
        return item["topk"]
    headers = context.get_all_request_header(index) or {}
    return next((value for key, value in headers.items() if key.lower() == TOPK_HEADER), None)


def _first_present(item: dict, keys: tuple[str, ...]):
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None
