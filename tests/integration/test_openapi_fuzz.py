"""Property-based fuzzing of the API from its own OpenAPI schema: never a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from omniretrieve.server.app import create_app  # noqa: E402
from omniretrieve.server.config import Limits, ServerConfig  # noqa: E402
from tests.integration.server_helpers import loaded_pool  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = ServerConfig(limits=Limits(max_inputs=16, max_documents=16, max_text_chars=2000))
APP = create_app(CONFIG, pool=loaded_pool(CONFIG))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
