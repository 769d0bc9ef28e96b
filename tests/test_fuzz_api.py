"""schemathesis over the service's own OpenAPI document: every operation, positive and negative examples (a
bounded number each), against the real app (HTTP routes, use cases, database, dispatcher and Ray pool) in
process, on SQLite and (where FIMG_TEST_DATABASE_URL is set) PostgreSQL. No response may be a server error,
carry a status the document does not declare for its operation, or a media type it does not declare.

schemathesis' own pytest plugin (`from_fixture`) does not run under pytest 9, so each operation is one test
that draws its cases from the operation's strategies."""
from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from conftest import create_key, database_params, fresh_database, make_settings

EXAMPLES_PER_OPERATION = {"sqlite": 20, "postgresql": 10}  # about 80 s and 45 s for all operations on 2 cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def _operations() -> list[tuple[str, str]]:
    from api import create_app

    spec = create_app(make_settings("sqlite://", Path("unused"))).openapi()  # the document needs no database
    return [(path, method) for path, operations in spec["paths"].items() for method in operations]


class Target:
    """The app under test, an admin key (renewed if an example revokes it) and a session into the app."""

    def __init__(self, app, examples: int):
        self.app, self.application, self.examples = app, app.state.application, examples
        self.session = ASGIClient(app)
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.renew()

    def renew(self) -> None:
        self.renewals = getattr(self, "renewals", 0) + 1  # key names are unique among active keys
        key = create_key(self.application, f"fuzz-admin-{self.renewals}", "admin")
        self.headers = {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module", params=database_params())
def target(request, ray_session, tmp_path_factory):
    from fastapi.testclient import TestClient

    from api import create_app

    data_dir = tmp_path_factory.mktemp("fuzz")
    app = create_app(make_settings(fresh_database(request.param, data_dir), data_dir / "data", rate_limit=""))
    with TestClient(app):  # the lifespan: schema, Ray pool, dispatcher
        target = Target(app, EXAMPLES_PER_OPERATION[request.param])
        analyst = {"Authorization": f"Bearer {create_key(target.application, 'fuzz-analyst', 'analyst')}"}
        target.session.post("/v1/banks", json={"name": "fuzz-bank"}, headers=analyst)
        yield target


@pytest.mark.slow
@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_server_error_and_no_undocumented_response(target, path, method):
    operation = target.schema[path][method.upper()]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(cases)
    @settings(max_examples=target.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def examples(case):
        response = case.call_and_validate(session=target.session, headers=target.headers, checks=CHECKS)
        if response.status_code == 401:  # an example revoked the admin key (DELETE /v1/keys/{id})
            target.renew()

    examples()
