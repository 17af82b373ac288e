"""Property test of the OpenAPI schema (schemathesis): generated requests to every operation,
including random multipart uploads, never get a 5xx, and the answers match the schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from ganforensics.serve.app import create_app
from ganforensics.serve.models import load_served, resolve_models
from ganforensics.serve.settings import DEFAULTS
from test_serve_api import make_run


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    torch.set_num_threads(1)
    run = make_run(tmp_path_factory.mktemp("schema") / "run")
    served = load_served(resolve_models([run]))  # loaded before the app: ready at once
    app = create_app(lambda: served, DEFAULTS.with_(max_wait_ms=1.0))
    with asgi.get_client(app) as client:  # the lifespan stays up for the module
        t0 = time.monotonic()
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() - t0 < 30
            time.sleep(0.05)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx(case):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert "Traceback" not in response.text
