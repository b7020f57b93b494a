"""The only ways out for an export: its download, and a small status for the progress bar.

Both are admin views (staff login, wrapped by the admin site in reports.admin) that check the
job is the user's own, or one of their scheduled reports, or that they may see every export.
A job someone may not see answers 404, as if it did not exist.
"""

from django.http import FileResponse, Http404, JsonResponse
from django.urls import reverse

from .models import ExportJob, export_storage


def _visible_job(request, pk: int) -> ExportJob:
    job = ExportJob.objects.select_related("schedule").filter(pk=pk).first()
    if job is None or not job.visible_to(request.user):
        raise Http404("No such export.")
    return job


def export_download(request, pk: int):
    job = _visible_job(request, pk)
    if job.state != ExportJob.State.DONE or not job.file:
        raise Http404("This export has no file (yet).")
    try:
        handle = export_storage().open(job.file.name, "rb")
    except FileNotFoundError:
        raise Http404("The file of this export is gone.") from None
    response = FileResponse(handle, as_attachment=True, filename=job.filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def status_of(job: ExportJob, admin_site_name: str = "admin") -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "progress": job.progress,
        "row_count": job.row_count,
        "error": job.error,
        "download_url": (
            reverse(f"{admin_site_name}:reports_exportjob_download", args=[job.pk])
            if job.state == ExportJob.State.DONE
            else None
        ),
    }


def export_status(request):
    """`?ids=1,2,3` -> {"jobs": [...]}: the jobs among these the user may see."""
    try:
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.strip()][:100]
    except ValueError:
        return JsonResponse({"code": "ids_invalid", "message": "ids: comma-separated numbers."}, status=400)
    user = request.user
    if not user.has_perm("reports.view_exportjob"):
        return JsonResponse({"jobs": []})
    jobs = ExportJob.objects.filter(ExportJob.visible_q(user), pk__in=ids).distinct()
    response = JsonResponse({"jobs": [status_of(job, request.resolver_match.namespace) for job in jobs]})
    response["Cache-Control"] = "no-store"
    return response
