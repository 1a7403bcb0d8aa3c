"""A run's context: check it against the inputs schema, merge values and outputs into it."""

from __future__ import annotations

import jsonschema

from agentos_common import limits
from agentos_common.nul import NUL_MESSAGE, first_nul
from workflows.models import Run
from workflows.plans import PlanError


def missing_required(error: jsonschema.ValidationError) -> list[str]:
    """Return the property names a `required` validation error is about."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [name for name in error.validator_value if name not in instance]


def _context_errors(schema: dict, context: dict) -> list[PlanError]:
    if limits.value_depth(context) > limits.MAX_DEPTH:
        return [PlanError("", "context", str(limits.TooDeep()))]
    nul = first_nul(context)
    if nul is not None:
        return [PlanError("", f"context.{nul}" if nul else "context", NUL_MESSAGE)]
    validator = jsonschema.Draft202012Validator(schema)
    errors = []
    for err in sorted(validator.iter_errors(context), key=lambda e: list(e.path)):
        if err.validator == "required":
            for name in missing_required(err):
                error = PlanError("", f"context.{name}", "this input is required")
                if error not in errors:
                    errors.append(error)
        else:
            path = ".".join(str(p) for p in err.path)
            errors.append(PlanError("", f"context.{path}" if path else "context", err.message))
    return errors


def merge_values(context: dict, values: dict) -> None:
    """Merge submitted values into a context; `a.b` keys set nested values."""
    for key, value in values.items():
        target = context
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[last] = value


def apply_outputs(run: Run, node: dict, output: dict) -> dict:
    """Write a node's declared outputs into the context; return what changed."""
    changed = {key: output.get(field) for key, field in node.get("outputs", {}).items()}
    run.context.update(changed)
    return changed
