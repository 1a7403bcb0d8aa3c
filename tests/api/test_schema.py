"""A schemathesis run over the OpenAPI schema against a real server.

Every operation gets a bounded number of generated requests as a superuser
(so requests reach the handlers, not only the permission check); none may
answer 5xx, and every answer must match the documented status, content type
and schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import token_create
from agentos_site.api import api
from tests.api.conftest import PEOPLE_SPEC
from workflows.services import run_create, workflow_create

EXAMPLES_PER_OPERATION = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.mark.django_db(transaction=True)
def test_no_operation_fails_or_breaks_its_schema(live_server, superuser, operator) -> None:
    workflow = workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    run_create(workflow=workflow, context={"name": "Ada"}, requester=operator)
    token = token_create(user=superuser, name="schemathesis").plain
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    seen: dict[str, set[int]] = {}

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=live_server.url, headers=headers)
            seen.setdefault(operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        check()

    assert len(seen) == len(operations)
    assert any(code < 300 for codes in seen.values() for code in codes)
