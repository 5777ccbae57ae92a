"""The REST routes of the A/B experiments: feedback, the running experiments, reports, and the operator's
controls (stop, restore, reload), which need the operator's bearer token (auth.py).

Predictions on an experiment go through POST /predict/{experiment} like any model (rest/app.py); these
routes read and steer what the experiments layer holds (zooserve/gateway/experiments/layer.py).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ..experiments import page
from ..experiments.layer import Experiments
from .auth import bearer
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


class StopRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="why, for the events and the report")


UNAUTHORIZED = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}}


def install_experiment_routes(app: FastAPI, experiments: Experiments) -> None:
    settings = experiments.settings
    operator = Depends(bearer(settings.operator_token_file, "experiment control", "ZOO_OPERATOR_TOKEN_FILE",
                              open_without=False))
    feedback_token = Depends(bearer(settings.feedback_token_file, "feedback", "ZOO_FEEDBACK_TOKEN_FILE",
                                    open_without=True))
    readers = [operator] if settings.reports_need_token else []
    controls = {"tags": ["experiments"], "dependencies": [operator],
                "responses": {404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, **UNAUTHORIZED}}

    @app.post("/feedback", status_code=201, response_model=FeedbackResponse, tags=["experiments"],
              dependencies=[feedback_token],
              responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                         401: {"model": ErrorResponse}},
              summary="Record the true label of an experiment request")
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        return FeedbackResponse.model_validate(await experiments.feedback(body.request_id, body.label))

    @app.get("/experiments", tags=["experiments"], dependencies=readers, responses=UNAUTHORIZED,
             summary="The running experiments: current weights, stopped variants, the file's last error")
    async def list_experiments() -> dict[str, Any]:
        return experiments.describe_all()

    @app.post("/experiments/reload", **controls, summary="Read this replica's experiments file now")
    async def reload() -> dict[str, Any]:
        return experiments.reload()

    @app.get("/experiments/{name}", tags=["experiments"], dependencies=readers,
             responses={404: {"model": ErrorResponse}, **UNAUTHORIZED}, summary="One running experiment")
    async def get_experiment(name: str) -> dict[str, Any]:
        return experiments.describe(name)

    @app.get("/experiments/{name}/report", tags=["experiments"], dependencies=readers,
             responses={404: {"model": ErrorResponse}, **UNAUTHORIZED},
             summary="Per-variant figures and each variant against the control (JSON, or HTML with charts)")
    async def report(request: Request, name: str,
                     format: Literal["json", "html"] | None = Query(default=None)) -> Any:  # noqa: A002
        data = await experiments.report(name)
        wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
        return HTMLResponse(page.render(data)) if wants_html else JSONResponse(data)

    @app.post("/experiments/{name}/variants/{variant}/stop", **controls,
              summary="Stop a variant's traffic on every replica, until it is restored")
    async def stop(name: str, variant: str, body: StopRequest) -> dict[str, Any]:
        return await experiments.stop(name, variant, body.reason)

    @app.post("/experiments/{name}/variants/{variant}/restore", **controls,
              summary="Give a stopped variant its configured traffic again, on every replica")
    async def restore(name: str, variant: str) -> dict[str, Any]:
        return await experiments.restore(name, variant)
