"""Schemathesis against the served OpenAPI spec: no 5xx on any generated input, valid and invalid alike."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from hfops.api import create_app
from hfops.config import load_settings
from hfops.refine.local import get_local_refiner

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    get_local_refiner().load(1)
    db_path = str(tmp_path_factory.mktemp("schemathesis") / "hfops.db")
    # No key: the fallback is never called (the router's HF paths are covered against the stand-in).
    app = create_app(load_settings(None, **{"store.path": db_path}), warm=False)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [
        ("/refine", "POST", GenerationMode.POSITIVE),
        ("/refine", "POST", GenerationMode.NEGATIVE),
        ("/healthz", "GET", GenerationMode.POSITIVE),  # no parameters: nothing to negate
    ],
)
def test_no_server_error_on_generated_input(
    api_schema: schemathesis.BaseSchema, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    statuses: list[int] = []

    @hypothesis_settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call()
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    assert statuses and max(statuses) < 500
    if path == "/refine":
        expected = 200 if mode is GenerationMode.POSITIVE else 422
        assert set(statuses) == {expected}, statuses
