from django.db import migrations, models

BATCH = 500


def purpose_from_state(apps, schema_editor):
    """Move each request's purpose out of its state into its own field."""
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    rows = []
    for request in ApprovalRequest.objects.filter(state__has_key="purpose").iterator():
        state = dict(request.state)
        request.purpose = state.pop("purpose") or ""
        request.state = state
        rows.append(request)
        if len(rows) >= BATCH:
            ApprovalRequest.objects.bulk_update(rows, ["purpose", "state"])
            rows = []
    ApprovalRequest.objects.bulk_update(rows, ["purpose", "state"])


def purpose_to_state(apps, schema_editor):
    """Put each request's purpose back into its state (the schema before)."""
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    rows = []
    for request in ApprovalRequest.objects.exclude(purpose="").iterator():
        request.state = {**request.state, "purpose": request.purpose}
        rows.append(request)
        if len(rows) >= BATCH:
            ApprovalRequest.objects.bulk_update(rows, ["state"])
            rows = []
    ApprovalRequest.objects.bulk_update(rows, ["state"])


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0006_metrics_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalrequest",
            name="purpose",
            field=models.CharField(
                blank=True,
                choices=[
                    ("approval_node", "Approval node"),
                    ("input_node", "Input node"),
                    ("mode_gate", "The mode's review of a step"),
                    ("gate_again", "A gate asked again"),
                    ("plan_review", "Review of the plan"),
                    ("missing", "A missing value"),
                    ("action_input", "An action's question"),
                    ("unknown_outcome", "An unknown outcome"),
                ],
                default="",
                help_text="What the paused run does with the decision.",
                max_length=20,
            ),
        ),
        migrations.RunPython(purpose_from_state, purpose_to_state),
    ]
