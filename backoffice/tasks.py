"""The back office's tasks, each named after the service it runs. Thin: load, call the
service."""

from celery import shared_task

from funders.models import ProgramExport


@shared_task(ignore_result=True)
def program_export_build(export_id: int) -> str | None:
    """Build an export's file into the file storage (backoffice.exports.export_build)."""
    from backoffice import exports

    export = ProgramExport.objects.filter(pk=export_id).select_related("program").first()
    if export is None:
        return None
    return exports.export_build(export=export).status
