"""Schema-driven fuzzing: schemathesis generates requests for every operation of the OpenAPI
description, valid and invalid, and sends them to gunicorn with a live token. No response may be
a 5xx, and every response must match its documented status, content type, headers and schema."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from config import TestingConfig
from tests.e2e.conftest import start_gunicorn
from tests.e2e.test_gunicorn_auth import register_and_login

pytestmark = pytest.mark.e2e

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Examples per operation: enough to reach every parameter and error branch, bounded for CI.
EXAMPLES = 10
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def fuzz_base(
    database_url: str, _schema: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A 2-worker gunicorn for the fuzzer."""
    process, base = start_gunicorn(
        database_url, tmp_path_factory.mktemp("fuzz") / "server.log", workers=2
    )
    yield base
    process.terminate()
    process.wait(timeout=15)


def openapi_description() -> dict[str, object]:
    """The OpenAPI description the app serves (the running server's is compared below)."""
    app = create_app(TestingConfig)
    return dict(app.test_client().get("/api/v1/openapi.json").get_json())


DESCRIPTION = openapi_description()
# An event stream never ends by itself; the events tests cover it.
schema = schemathesis.openapi.from_dict(DESCRIPTION).exclude(path="/api/v1/events/stream")


def fresh_token(base: str) -> str:
    """Register and log in a new user; each example gets its own, so none can spoil another."""
    return register_and_login(base, f"fuzz{next(_numbers)}")["access_token"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_conforms(case: schemathesis.Case, fuzz_base: str, app: Flask) -> None:
    headers = {"Authorization": f"Bearer {fresh_token(fuzz_base)}"}
    if case.path == "/api/v1/events" and isinstance(case.query, dict):
        case.query["timeout"] = 0  # a long-poll would wait up to 30 s for nothing
    case.call_and_validate(base_url=fuzz_base, headers=headers, checks=CHECKS, timeout=15)


def test_the_fuzzed_description_is_the_running_servers(fuzz_base: str) -> None:
    served = requests.get(f"{fuzz_base}/api/v1/openapi.json", timeout=10).json()
    assert served == DESCRIPTION
    operations = [op for item in served["paths"].values() for op in item if op != "parameters"]
    assert len(operations) >= 30, len(operations)
