from celery import shared_task

from . import notify, services


# acks_late: a worker that dies mid-export leaves the message to be delivered again; the job's
# claim (one conditional UPDATE) makes a second delivery do nothing while the first is alive.
@shared_task(name="reports.export_job_run", acks_late=True)
def export_job_run_task(job_id: int) -> None:
    services.export_job_run(job_id=job_id)


# Idempotent (one notice row per job and recipient, claimed in the sending transaction), so
# acks_late and retries are safe. A mail server that fails is retried with backoff (about 30 s,
# 1, 2, 4 ... up to 60 minutes apart, 10 times); the export itself stays done.
@shared_task(
    name="reports.export_job_notify",
    acks_late=True,
    autoretry_for=(notify.NoticeNotSent,),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=10,
)
def export_job_notify_task(job_id: int) -> int:
    return notify.export_job_notify(job_id=job_id)


@shared_task(name="reports.exports_beat")
def exports_beat_task() -> dict:
    """Beat, every minute: today's scheduled reports that are due, exports that lost their worker,
    and exports past their keeping time."""
    return {
        "scheduled": services.scheduled_reports_run(),
        "requeued": services.export_jobs_requeue_stuck(),
        "pruned": services.export_files_prune(),
    }
