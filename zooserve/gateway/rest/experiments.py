"""The REST routes of the A/B experiments: feedback, the running experiments, reports, restoring a variant.

Predictions on an experiment go through POST /predict/{experiment} like any model (rest/app.py); these
routes read and steer what the experiments layer holds (zooserve/gateway/experiments/layer.py).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ..experiments import page
from ..experiments.layer import Experiments
from .schemas import ErrorResponse


class FeedbackRequest(BaseModel):
    request_id: str = Field(min_length=1, max_length=128, description="the request id of an experiment prediction")
    label: int | str = Field(description="the true class: its index, or its name in the model's label set")


class FeedbackResponse(BaseModel):
    request_id: str
    experiment: str
    model: str
    label_index: int
    label: str


def install_experiment_routes(app: FastAPI, experiments: Experiments) -> None:
    @app.post("/feedback", status_code=201, response_model=FeedbackResponse, tags=["experiments"],
              responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
              summary="Record the true label of an experiment request")
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        return FeedbackResponse.model_validate(await experiments.feedback(body.request_id, body.label))

    @app.get("/experiments", tags=["experiments"],
             summary="The running experiments: current weights, stopped variants, the file's last error")
    async def list_experiments() -> dict[str, Any]:
        return experiments.describe_all()

    @app.get("/experiments/{name}", tags=["experiments"], responses={404: {"model": ErrorResponse}},
             summary="One running experiment")
    async def get_experiment(name: str) -> dict[str, Any]:
        return experiments.describe(name)

    @app.get("/experiments/{name}/report", tags=["experiments"], responses={404: {"model": ErrorResponse}},
             summary="Per-variant figures and each variant against the control (JSON, or HTML with a chart)")
    async def report(request: Request, name: str,
                     format: Literal["json", "html"] | None = Query(default=None)) -> Any:  # noqa: A002
        data = await experiments.report(name)
        wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
        return HTMLResponse(page.render(data)) if wants_html else JSONResponse(data)

    @app.post("/experiments/{name}/variants/{variant}/restore", tags=["experiments"],
              responses={404: {"model": ErrorResponse}},
              summary="Give a variant stopped by a guardrail its configured traffic again")
    async def restore(name: str, variant: str) -> dict[str, Any]:
        return experiments.restore(name, variant)
