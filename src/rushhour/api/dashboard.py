"""The dashboard: a few HTML pages served by the API app, drawing with a vendored uPlot (no CDN).

Pages are shells; ``static/app.js`` fills them from the JSON API, so the dashboard shows exactly what
the API serves. Charts ask for server-side downsampled points (one per pixel), so a month of 1-minute
data stays fast; the series list is paginated.
"""

from __future__ import annotations

import html
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

PAGES = {
    "series": "Series",
    "alerts": "Alerts",
    "silences": "Silences",
    "upload": "Upload",
}


def page(kind: str, title: str, ident: str = "") -> HTMLResponse:
    nav = "".join(
        f'<a href="/ui/{k}"{" class=on" if k == kind or (kind == "chart" and k == "series") else ""}>{v}</a>'
        for k, v in PAGES.items()
    )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · rushhour</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/uPlot.min.css"><link rel="stylesheet" href="/static/style.css">
</head><body><header><a class="brand" href="/ui/series">rushhour</a><nav>{nav}</nav></header>
<main id="app" data-page="{kind}" data-id="{html.escape(ident)}"><p class="muted">loading…</p></main>
<script src="/static/uPlot.iife.min.js"></script><script src="/static/app.js"></script>
</body></html>"""
    return HTMLResponse(body)


def mount(app: FastAPI) -> None:
    static = files("rushhour.api") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/series")

    @app.get("/ui/series", include_in_schema=False)
    def series_list() -> HTMLResponse:
        return page("series", "Series")

    @app.get("/ui/series/{series_id}", include_in_schema=False)
    def series_page(series_id: int) -> HTMLResponse:
        return page("chart", "Series", str(series_id))

    @app.get("/ui/alerts", include_in_schema=False)
    def alerts_page() -> HTMLResponse:
        return page("alerts", "Alerts")

    @app.get("/ui/silences", include_in_schema=False)
    def silences_page() -> HTMLResponse:
        return page("silences", "Silences")

    @app.get("/ui/upload", include_in_schema=False)
    def upload_page() -> HTMLResponse:
        return page("upload", "Upload")
