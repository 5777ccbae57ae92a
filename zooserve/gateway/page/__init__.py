"""GET /: one self-contained page for people (no external assets; works offline). It reads the catalog
(GET /models), sends the chosen image to POST /predict/<model> and draws the top 5 with the latency."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

PAGE = files(__package__).joinpath("index.html").read_text(encoding="utf-8")


def install(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})
