"""Property-based fuzzing of every operation in the app's OpenAPI schema (schemathesis).

Authenticated: no 5xx but the spec's 503 (Telegram refused: bad token, bad channel), and
every response documented by the schema (status, content type, body). Schema-valid input
may still be refused with 422 for rules JSON Schema cannot say (a channel id that is no
Telegram id, a message that renders empty or past 4096 UTF-16 units), so schemathesis'
"positive data acceptance" check is off. Unauthenticated: every route but /healthz is 401
with a Basic challenge."""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from botmgr.app import create_app
from botmgr.settings import Settings
from tests.harness.processes import ApiProcess

pytestmark = pytest.mark.timeout(300)
EXAMPLES = 110  # × 11+ operations with input (/healthz has none) ≥ 1,000 cases
CASES: list[str] = []


def _labels() -> list[str]:
    """Every operation the app documents (a new route is fuzzed without a test edit)."""
    app = create_app(Settings(_env_file=None, dev=True, tg_api_id=1, tg_api_hash="x"))  # type: ignore[call-arg]
    paths = app.openapi()["paths"]
    return sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)


LABELS = _labels()


@pytest.fixture(scope="session")
def api_schema(fuzz_api: ApiProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json", auth=fuzz_api.auth)


# schemathesis' own pytest plugin does not load under pytest 9, so each operation's
# strategy is driven by hypothesis directly.
@pytest.mark.parametrize("label", LABELS)
def test_operation(label: str, api_schema: schemathesis.BaseSchema, fuzz_api: ApiProcess) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        CASES.append(label)
        response = case.call_and_validate(
            auth=fuzz_api.auth,
            timeout=30,
            excluded_checks=[not_a_server_error, positive_data_acceptance],
        )
        # 503 is the spec's answer when Telegram refuses (an invalid token, a bad
        # channel); any other 5xx is a bug.
        assert response.status_code < 500 or response.status_code == 503, response.text

    run()


def test_enough_cases_ran() -> None:
    assert set(CASES) == set(LABELS)
    assert len(CASES) >= 1000, len(CASES)


def test_every_route_but_healthz_needs_credentials(fuzz_api: ApiProcess) -> None:
    spec = httpx.get(f"{fuzz_api.url}/openapi.json", auth=fuzz_api.auth).json()
    checked = 0
    for path, operations in spec["paths"].items():
        url = fuzz_api.url + re.sub(r"\{[a-z_]+\}", "1", path)
        for method in operations:
            for auth in (None, ("operator", "wrong"), ("nobody", "")):
                response = httpx.request(method, url, auth=auth, json={})
                if path == "/healthz":
                    assert response.status_code == 200, response.text
                    continue
                assert response.status_code == 401, (method, path, auth, response.text)
                assert response.headers["www-authenticate"].startswith("Basic")
                assert isinstance(response.json()["message"], str)
                checked += 1
    assert checked >= 3 * 11
