"""Exports: a private exports folder per test, events written into the log, and readers for files."""

import csv
import io
import itertools
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.db import connection

from reports.models import ExportJob, export_storage
from reports.services import export_job_create, export_job_run

_event_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def exports_root(settings, tmp_path) -> Path:
    root = tmp_path / "exports"
    settings.FISSION_EXPORTS_ROOT = str(root)
    return root


@pytest.fixture
def stranger(db) -> User:
    """Sid, staff in the same groups as Olga, who must not read Olga's files."""
    from django.contrib.auth.models import Group

    user = User.objects.create_user("sid", password="pw-sid-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Campaign managers"))
    return user


def add_event(campaign, *, at: datetime, name: str = "share", participant_id=None, **fields) -> int:
    """One row of the event log, as ingest writes it (received when it occurred)."""
    pk = next(_event_ids) + 10_000_000
    row = {
        "id": pk,
        "received_at": at,
        "occurred_at": fields.pop("occurred_at", at),
        "campaign_id": campaign.pk,
        "participant_id": participant_id,
        "name": name,
        "source": fields.pop("source", 1),
        "inviter_id": fields.pop("inviter_id", None),
        "channel_id": fields.pop("channel_id", None),
        "client_event_id": fields.pop("client_event_id", f"ce-{pk}"),
        "properties": json.dumps(fields.pop("properties")) if "properties" in fields else None,
    }
    assert not fields, fields
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO referrals_event ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",  # noqa: S608
            list(row.values()),
        )
    return pk


@pytest.fixture
def export(ops):
    """Queue a job as `ops` (or another user) and run it as the worker does; the job back."""

    def run(report: str, fmt: str = "csv", requester=None, **parameters) -> ExportJob:
        job = export_job_create(report=report, parameters=parameters, format=fmt, requester=requester or ops)
        return export_job_run(job_id=job.pk)

    return run


def read_bytes(job: ExportJob) -> bytes:
    with export_storage().open(job.file.name, "rb") as f:
        return f.read()


def csv_rows(job: ExportJob) -> list[list[str]]:
    data = read_bytes(job)
    assert data.startswith(b"\xef\xbb\xbf"), "a CSV for Excel starts with the UTF-8 BOM"
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def xlsx_rows(job: ExportJob) -> list[tuple]:
    workbook = openpyxl.load_workbook(io.BytesIO(read_bytes(job)), read_only=True)
    rows = [row for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
