"""The search page at ``/`` (plain HTML, CSS and JavaScript shipped with the package: no CDN,
no build step) and the paths that stay open without an API key (the page and the docs; the
page sends the key the user types to the API)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's files are served from (installed with fastapi-offline)."""
OPEN_PREFIXES = ("/page/", f"{DOCS_ASSETS}/")
OPEN_PATHS = frozenset({"/", "/redoc", "/favicon.ico"})


def install_search_page(app: FastAPI) -> None:
    app.mount("/page", StaticFiles(directory=PAGE, html=False), name="page")

    @app.get("/", include_in_schema=False)
    async def search_page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(PAGE / "favicon.ico", media_type="image/x-icon")
