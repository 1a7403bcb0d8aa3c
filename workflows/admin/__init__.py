"""The workflows admin: workflows, runs and the event log.

Importing this package registers every ModelAdmin with the default site.
"""

from workflows.admin.events import EventAdmin
from workflows.admin.runs import RunAdmin
from workflows.admin.volume import RunBatchAdmin, WorkflowScheduleAdmin
from workflows.admin.workflow import WorkflowAdmin

__all__ = ["EventAdmin", "RunAdmin", "RunBatchAdmin", "WorkflowAdmin", "WorkflowScheduleAdmin"]
