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
