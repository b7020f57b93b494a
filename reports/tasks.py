from celery import shared_task

from . import services


# acks_late: a worker that dies mid-export leaves the message to be delivered again; the job's
# claim (one conditional UPDATE) makes a second delivery do nothing while the first is alive.
@shared_task(name="reports.export_job_run", acks_late=True)
def export_job_run_task(job_id: int) -> None:
    services.export_job_run(job_id=job_id)


@shared_task(name="reports.exports_beat")
def exports_beat_task() -> dict:
    """Beat, every minute: today's scheduled reports that are due, exports that lost their worker,
    and exports past their keeping time."""
    return {
        "scheduled": services.scheduled_reports_run(),
        "requeued": services.export_jobs_requeue_stuck(),
        "pruned": services.export_files_prune(),
    }
