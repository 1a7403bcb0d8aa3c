from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0009_run_parent"),
    ]

    operations = [
        migrations.RenameField(
            model_name="run",
            old_name="clearance",
            new_name="resume_grant",
        ),
    ]
