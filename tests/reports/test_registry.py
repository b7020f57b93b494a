"""Parameters are cleaned in one place, for the admin form, a schedule and a queued job alike."""

from datetime import date

import pytest

from config.errors import ApplicationError
from reports.registry import report_get, report_list

pytestmark = pytest.mark.django_db


def test_every_report_named_in_the_issue_is_registered():
    names = {r.name for r in report_list()}
    assert {"events", "rewards", "fraud_cases", "payouts", "participants"} <= names
    assert {"funnel", "funnel_dropoffs", "retention", "kfactor", "sharers", "channels"} <= names


def test_events_parameters_cleaned_to_json(live_campaign):
    cleaned = report_get("events").clean(
        {
            "campaign": str(live_campaign.pk),
            "date_from": "2027-02-03",
            "date_to": "2027-02-04",
            "event_names": "open, share,open",
        }
    )
    assert cleaned == {
        "campaign": live_campaign.pk,
        "date_from": "2027-02-03",
        "date_to": "2027-02-04",
        "event_names": ["open", "share"],
    }


def test_unknown_missing_and_wrong_values_are_each_named(live_campaign):
    with pytest.raises(ApplicationError) as refused:
        report_get("fraud_cases").clean({"campaign": 999_999, "band": "purple", "colour": "red"})
    assert refused.value.code == "parameters_invalid"
    assert set(refused.value.fields) == {"campaign", "band", "colour"}
    with pytest.raises(ApplicationError) as refused:
        report_get("rewards").clean({})
    assert refused.value.fields == {"campaign": "Required."}
    with pytest.raises(ApplicationError) as refused:
        report_get("rewards").clean({"campaign": live_campaign.pk, "states": ["paid", "stolen"]})
    assert "stolen" in refused.value.fields["states"]


def test_relative_days_only_for_schedules_and_resolved_on_the_day(live_campaign):
    events = report_get("events")
    raw = {"campaign": live_campaign.pk, "date_from": "today-7", "date_to": "yesterday"}
    with pytest.raises(ApplicationError):
        events.clean(raw)
    assert events.clean(raw, relative_dates=True)["date_from"] == "today-7"
    resolved = events.clean(raw, relative_dates=True, today=date(2027, 2, 10))
    assert (resolved["date_from"], resolved["date_to"]) == ("2027-02-03", "2027-02-09")
