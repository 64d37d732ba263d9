"""The search page at ``/`` (plain HTML, CSS and JavaScript shipped with the package: no CDN,
no build step) and the paths that stay open without an API key (the page and the docs; the
page sends the key the user types to the API)."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

PAGE = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's files are served from (installed with fastapi-offline)."""
OPEN_PREFIXES = ("/page/", f"{DOCS_ASSETS}/")
OPEN_PATHS = frozenset({"/", "/redoc", "/favicon.ico"})
REDOC_JS = f"{DOCS_ASSETS}/redoc.standalone.js"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def redoc_script() -> bytes:
    """fastapi-offline's ReDoc with its one remote file (the "API docs by Redocly" logo,
    fetched from a CDN) replaced by the package's own SVG, as a data URI."""
    import base64

    import fastapi_offline

    source = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    logo = base64.b64encode((PAGE / "redoc-logo.svg").read_bytes()).decode()
    return source.read_bytes().replace(
        REDOC_CDN_LOGO.encode(), f"data:image/svg+xml;base64,{logo}".encode()
    )


def install_search_page(app: FastAPI) -> None:
    async def redoc_standalone() -> Response:
        return Response(
            redoc_script(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # ahead of the docs assets' mount, which serves the file as installed
    app.router.routes.insert(
        0, APIRoute(REDOC_JS, redoc_standalone, methods=["GET"], include_in_schema=False)
    )
    app.mount("/page", StaticFiles(directory=PAGE, html=False), name="page")

    @app.get("/", include_in_schema=False)
    async def search_page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(PAGE / "favicon.ico", media_type="image/x-icon")
