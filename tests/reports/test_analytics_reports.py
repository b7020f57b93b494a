"""The cockpit's metrics exported: the same numbers analytics.selectors gives, laid out as rows."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from analytics import selectors
from reports.models import ExportJob

from .conftest import csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db


def test_funnel_rows_are_the_selectors_steps(live_campaign, export):
    expected = selectors.funnel(live_campaign)
    job = export("funnel", "xlsx", campaign=live_campaign.pk)
    assert job.state == ExportJob.State.DONE, job.error
    header, *rows = xlsx_rows(job)
    assert header[:4] == ("step", "label", "unit", "count")
    assert [r[0] for r in rows] == [s["step"] for s in expected["steps"]]
    for row, step in zip(rows, expected["steps"], strict=True):
        assert row[3] == step["count"]
        assert row[4] == step["step_conversion"]
        assert row[9] == step["estimate_label"]


def test_funnel_dropoffs_stream_the_selectors_rows(live_campaign, export):
    expected = list(selectors.funnel_dropoffs(live_campaign, step="join"))
    job = export("funnel_dropoffs", campaign=live_campaign.pk, step="join")
    assert job.state == ExportJob.State.DONE, job.error
    header, *rows = csv_rows(job)
    assert header[0] == "participant_id"
    assert [int(r[0]) for r in rows] == [r["participant_id"] for r in expected]


def test_retention_rows_are_one_per_cohort_and_day(live_campaign, export):
    expected = selectors.retention(live_campaign, kind="cumulative", basis="rolling")
    job = export("retention", campaign=live_campaign.pk, kind="cumulative", basis="rolling")
    assert job.state == ExportJob.State.DONE, job.error
    header, *rows = csv_rows(job)
    assert header == ["cohort_day", "cohort_size", "day_n", "retained", "rate", "incomplete"]
    assert len(rows) == sum(len(c["cells"]) for c in expected["cohorts"])


@pytest.mark.parametrize("table", ["by_cohort_day", "by_generation", "depth_histogram", "cascades"])
def test_kfactor_tables(live_campaign, export, table):
    expected = selectors.virality(live_campaign)[table]
    job = export("kfactor", "xlsx", campaign=live_campaign.pk, table=table)
    assert job.state == ExportJob.State.DONE, job.error
    header, *rows = xlsx_rows(job)
    assert len(rows) == len(expected)
    if table == "by_generation":
        assert header == ("generation", "joined", "valid", "k")
        assert [r[0] for r in rows] == [g["generation"] for g in expected]


def test_sharers_leaderboard(live_campaign, export):
    expected = selectors.sharers(live_campaign, leaderboard_size=1000)["leaderboard"]
    header, *rows = csv_rows(export("sharers", campaign=live_campaign.pk))
    assert header[0] == "participant_id" and header[-1] == "fraud_outcome"
    assert [int(r[0]) for r in rows] == [s["participant_id"] for s in expected]


def test_channels_end_with_the_total(live_campaign, export, with_channels):
    with_channels(live_campaign)
    expected = selectors.channels(live_campaign)
    header, *rows = csv_rows(export("channels", campaign=live_campaign.pk))
    assert len(rows) == len(expected["channels"]) + 1
    assert rows[-1][header.index("name")] == "Total"
    assert Decimal(rows[-1][header.index("spend_yuan")]) == expected["total"]["spend"]


def test_iso_times_from_the_selectors_become_spreadsheet_dates():
    from reports.analytics_reports import day, when

    assert when("2027-02-03T14:05:00+08:00") == datetime.fromisoformat("2027-02-03T14:05:00+08:00")
    assert when(None) is None
    assert day("2027-02-03") == date(2027, 2, 3)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_folded_campaigns_metrics_in_the_files(make_campaign, make_participant, ops):
    """A told story, folded by analytics, exported: the numbers analytics computed."""
    from datetime import timedelta

    from django.utils import timezone

    from analytics.services import fold_campaign
    from campaigns.models import Campaign
    from referrals.services.partitions import event_partitions_ensure
    from reports.services import export_job_create, export_job_run
    from tests.analytics.conftest import Story

    # given: A shares twice; B opens A's link and joins 10 min later, then qualifies;
    # C opens and leaves; D opens, joins 20 min later and never qualifies
    event_partitions_ensure(start=timezone.now().date() - timedelta(days=3), days_ahead=6)
    now = timezone.now()
    s = Story(
        make_campaign(
            status=Campaign.Status.LIVE,
            valid_event_name="resume_completed",
            starts_at=now - timedelta(days=8),
            ends_at=now + timedelta(days=8),
        ),
        make_participant,
    )
    t0 = now - timedelta(days=1)
    a, b, c, d = (s.person() for _ in range(4))
    s.join(a, at=t0)
    s.share(a, at=t0 + timedelta(minutes=1), times=2)
    s.join(b, at=t0 + timedelta(hours=1, minutes=10), via=a, opened_at=t0 + timedelta(hours=1))
    s.qualify(b, at=t0 + timedelta(hours=1, minutes=40))
    s.open(s.link(a), c, at=t0 + timedelta(hours=2))
    s.join(d, at=t0 + timedelta(hours=3, minutes=20), via=a, opened_at=t0 + timedelta(hours=3))
    assert fold_campaign(campaign_id=s.campaign.pk) is not None

    def export(report, fmt="csv", **params):
        job = export_job_create(
            report=report, parameters={"campaign": s.campaign.pk, **params}, format=fmt, requester=ops
        )
        job = export_job_run(job_id=job.pk)
        assert job.state == ExportJob.State.DONE, job.error
        return job

    # when the funnel, its drop-offs and the sharers are exported, then the files hold them
    header, *rows = xlsx_rows(export("funnel", "xlsx"))
    assert [(r[0], r[3]) for r in rows] == [
        ("share", 1),
        ("open", 3),
        ("join", 2),
        ("valid", 1),
        ("retained_d7", 0),
    ]
    assert rows[2][header.index("median_minutes")] == 10.0
    _, *lost = csv_rows(export("funnel_dropoffs", step="join"))
    assert [int(r[0]) for r in lost] == [c.pk]
    header, *board = csv_rows(export("sharers"))
    top = dict(zip(header, board[0], strict=True))
    assert (int(top["participant_id"]), top["shares"], top["direct_valid"]) == (a.pk, "2", "1")
    # and the raw events of those days are all there
    today = timezone.localdate(now, s.campaign.tz)
    _, *events = csv_rows(
        export("events", date_from=(today - timedelta(days=2)).isoformat(), date_to=today.isoformat())
    )
    assert sorted(r[4] for r in events).count("share") == 2
