"""Schemathesis, with every check and every phase, against a real server.

`st run --checks all` drives the live test server through the examples,
coverage, fuzzing and stateful phases with a bounded number of examples per
operation, as a superuser (so requests reach the handlers, not only the
permission check). It must find nothing: no 5xx, every answer of a documented
status, content type, headers and schema, invalid input refused, valid input
accepted, authentication never ignored. tests/api/schemathesis.toml holds the
few per-operation narrowings, each with its reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import token_create
from tests.api.conftest import PEOPLE_SPEC
from workflows.engine import run_advance
from workflows.services import run_create, workflow_create

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Bounded so that one run stays within a few minutes on two cores.
MAX_EXAMPLES = 8
SEED = 17


@pytest.mark.django_db(transaction=True)
def test_schemathesis_with_every_check_and_phase_finds_nothing(
    live_server, settings, superuser, operator, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings.AGENTOS_API_RATE_LIMIT = 0  # thousands of requests in a minute
    workflow = workflow_create(raw_spec=PEOPLE_SPEC, actor=operator)
    waiting = run_create(workflow=workflow, context={"name": "Ada"}, requester=operator)
    run_advance(run_id=waiting.pk)  # a pending approval request to read and decide
    run_create(workflow=workflow, context={"name": "Grace"}, requester=operator)
    token = token_create(user=superuser, name="schemathesis").plain
    report = tmp_path / "junit.xml"

    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--url",
        live_server.url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--continue-on-failure",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--output-truncate",
        "false",
        "--request-timeout",
        "30",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=tmp_path,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 20, output[-5000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # each ran, none was skipped
        assert re.search(rf"✅ +{phase}", output), output[-5000:]
