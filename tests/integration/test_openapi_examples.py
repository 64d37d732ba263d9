"""Every request body documented on /docs and /redoc works when tried ("Try it out") against a
server at its defaults, in the order the page lists them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig

CONFIG = ServerConfig()  # serve's defaults: no key, clients' default model names answered


@pytest.fixture()
def client(server_pool, tmp_path) -> Any:
    config = ServerConfig(collections_root=tmp_path)
    with TestClient(create_app(config, pool=server_pool(CONFIG))) as test_client:
        yield test_client


def documented_bodies(schema: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(method, path, example name, body) of every JSON request body the schema documents;
    fails on a JSON body with no example (Swagger would make one up: "model": "string")."""
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            examples = content["application/json"].get("examples")
            assert examples, f"{method.upper()} {path} documents no example body"
            found += [(method, path, n, e["value"]) for n, e in examples.items()]
    return found


def test_every_documented_example_gets_a_2xx(client: TestClient) -> None:
    bodies = documented_bodies(client.get("/openapi.json").json())
    assert len(bodies) >= 8
    for method, path, name, body in bodies:
        url = path.replace("{name}", "notes")  # the create example's collection
        response = client.request(method, url, json=body)
        assert 200 <= response.status_code < 300, (method, path, name, response.text)
        if path.endswith("/search"):
            assert response.json()["hits"][0]["doc_id"] == "cats"
