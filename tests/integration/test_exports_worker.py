"""An export queued as the admin queues it, written by a real Celery worker on the real broker."""

import csv
import io
import time
from decimal import Decimal

import openpyxl
import pytest

from referrals.models import Reward, RewardRule
from reports.models import ExportJob, export_storage
from reports.services import export_job_create
from reports.tasks import export_job_run_task

from .conftest import start_worker, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def export_worker(transactional_db, tmp_path, settings):
    """A worker writing into the same private exports folder this test reads."""
    exports = tmp_path / "exports"
    settings.FISSION_EXPORTS_ROOT = str(exports)
    log_path = tmp_path / "worker.log"
    log_path.touch()
    proc = start_worker(log_path, FISSION_EXPORTS_ROOT=str(exports))
    try:
        yield log_path
    finally:
        stop_worker(proc)


def test_worker_writes_queued_exports_once(live_campaign, make_participant, ops, export_worker):
    # given two rewards and two exports queued (committed: the task goes to the broker)
    rule = RewardRule.objects.create(campaign=live_campaign, name="¥5", amount=Decimal("5.00"))
    for n, amount in enumerate(["5.00", "12.34"]):
        Reward.objects.create(
            rule=rule,
            campaign=live_campaign,
            beneficiary=make_participant(nickname=f"友 {n}"),
            source=f"s{n}",
            kind="cash",
            amount=Decimal(amount),
        )
    as_csv = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="csv", requester=ops
    )
    as_xlsx = export_job_create(
        report="rewards", parameters={"campaign": live_campaign.pk}, format="xlsx", requester=ops
    )
    # when the worker takes them, both files are written
    assert wait_for(
        lambda: set(ExportJob.objects.values_list("state", flat=True)) == {ExportJob.State.DONE}
    ), export_worker.read_text()
    as_csv.refresh_from_db()
    as_xlsx.refresh_from_db()
    with export_storage().open(as_csv.file.name, "rb") as f:
        data = f.read()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode())))
    assert sorted(r[rows[0].index("amount_yuan")] for r in rows[1:]) == ["12.34", "5.00"]
    assert sorted(r[rows[0].index("beneficiary_nickname")] for r in rows[1:]) == ["友 0", "友 1"]
    with export_storage().open(as_xlsx.file.name, "rb") as f:
        sheet = openpyxl.load_workbook(io.BytesIO(f.read()), read_only=True).worksheets[0]
        assert len(list(sheet.iter_rows(values_only=True))) == 3
    assert "reports.export_job_run" in export_worker.read_text()
    # and a second delivery of the same task changes nothing
    succeeded = export_worker.read_text().count("succeeded")
    export_job_run_task.delay(as_csv.pk)
    assert wait_for(lambda: export_worker.read_text().count("succeeded") > succeeded), (
        export_worker.read_text()
    )
    again = ExportJob.objects.get(pk=as_csv.pk)
    assert (again.attempts, again.file.name, again.state) == (1, as_csv.file.name, ExportJob.State.DONE)
