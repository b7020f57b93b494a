"""What each report's file holds: CSV with a BOM read back, XLSX opened with openpyxl."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from referrals.models import FraudCase, FraudRuleSet, Payout, PayoutBatch, Referral, Reward, RewardRule
from reports.models import ExportJob
from tests.conftest import share_link_for

from .conftest import add_event, csv_rows, xlsx_rows

pytestmark = pytest.mark.django_db

SHANGHAI_MIDNIGHT_FEB_3 = datetime(2027, 2, 2, 16, 0, tzinfo=UTC)  # 2027-02-03 00:00 in Asia/Shanghai


@pytest.fixture
def festival(make_campaign):
    return make_campaign(
        slug="festival",
        time_zone="Asia/Shanghai",
        starts_at=datetime(2027, 2, 1, tzinfo=UTC),
        ends_at=datetime(2027, 2, 11, tzinfo=UTC),
    )


def test_events_csv_holds_the_local_days_asked_for_with_local_times(festival, export):
    # given events around the campaign-local day 2027-02-03 (Shanghai, UTC+8)
    before = add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3 - timedelta(seconds=1), participant_id=7)
    first = add_event(
        festival, at=SHANGHAI_MIDNIGHT_FEB_3, name="open", participant_id=7, properties={"scene": 1007}
    )
    last = add_event(
        festival,
        at=SHANGHAI_MIDNIGHT_FEB_3 + timedelta(days=1, seconds=-1),
        name="register",
        participant_id=8,
        inviter_id=7,
        source=2,
    )
    after = add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3 + timedelta(days=1), participant_id=8)
    # when the day is exported as CSV
    job = export("events", campaign=festival.pk, date_from="2027-02-03", date_to="2027-02-03")
    # then the file is done and holds exactly that local day, times in the campaign's zone
    assert job.state == ExportJob.State.DONE, job.error
    assert job.progress == 100
    header, *rows = csv_rows(job)
    assert header == [
        "id",
        "received_at (Asia/Shanghai)",
        "occurred_at (Asia/Shanghai)",
        "participant_id",
        "name",
        "source",
        "inviter_id",
        "channel_id",
        "client_event_id",
        "properties",
    ]
    assert sorted(int(r[0]) for r in rows) == [first, last]
    assert before not in [int(r[0]) for r in rows] and after not in [int(r[0]) for r in rows]
    by_id = {int(r[0]): r for r in rows}
    assert by_id[first][1] == "2027-02-03 00:00:00"
    assert by_id[first][4:6] == ["open", "client"]
    assert by_id[first][9] == '{"scene": 1007}'
    assert by_id[last][1] == "2027-02-03 23:59:59"
    assert by_id[last][3:7] == ["8", "register", "server", "7"]
    assert job.row_count == 2


def test_events_filtered_by_name_and_formulas_cannot_run_in_excel(festival, export):
    # given a client-sent event name that Excel would run as a formula
    share = add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3, name="share")
    sneaky = add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3, name='=HYPERLINK("http://x")')
    add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3, name="open")
    # when only two names are exported
    job = export(
        "events",
        campaign=festival.pk,
        date_from="2027-02-03",
        date_to="2027-02-04",
        event_names=["share", '=HYPERLINK("http://x")'],
    )
    # then the third is left out and the formula is text
    rows = {int(r[0]): r for r in csv_rows(job)[1:]}
    assert set(rows) == {share, sneaky}
    assert rows[sneaky][4] == '\'=HYPERLINK("http://x")'


def test_events_xlsx_has_numbers_and_local_datetimes(festival, export):
    # given two events
    one = add_event(festival, at=SHANGHAI_MIDNIGHT_FEB_3 + timedelta(hours=9, minutes=30), participant_id=5)
    add_event(
        festival, at=SHANGHAI_MIDNIGHT_FEB_3 + timedelta(hours=10), name="open", properties={"a": "<&>"}
    )
    # when exported as XLSX
    job = export("events", "xlsx", campaign=festival.pk, date_from="2027-02-03", date_to="2027-02-03")
    # then openpyxl reads typed cells: ints, datetimes in Shanghai time, escaped text
    assert job.state == ExportJob.State.DONE, job.error
    header, *rows = xlsx_rows(job)
    assert header[0] == "id" and header[1] == "received_at (Asia/Shanghai)"
    assert len(rows) == 2 == job.row_count
    by_id = {r[0]: r for r in rows}
    assert by_id[one][1] == datetime(2027, 2, 3, 9, 30)
    assert by_id[one][3] == 5
    assert by_id[one][5] == "client"
    other = next(r for r in rows if r[0] != one)
    assert other[3] is None
    assert other[9] == '{"a": "<&>"}'


@pytest.fixture
def ledger(live_campaign, sharer, invitee, second_invitee):
    """Sam invited Ivy (valid) and Ike (joined); Sam has two rewards, one paid out."""
    link = share_link_for(live_campaign, sharer)
    now = timezone.now()
    Referral.objects.create(
        campaign=live_campaign,
        invitee=invitee,
        inviter=sharer,
        root=sharer,
        link=link,
        depth=1,
        status=Referral.Status.VALID,
        joined_at=now,
        valid_at=now,
    )
    Referral.objects.create(
        campaign=live_campaign, invitee=second_invitee, inviter=sharer, root=sharer, depth=1, joined_at=now
    )
    rule = RewardRule.objects.create(
        campaign=live_campaign, name="¥5 per valid friend", amount=Decimal("5.00")
    )
    paid = Reward.objects.create(
        rule=rule,
        campaign=live_campaign,
        beneficiary=sharer,
        source=f"referral:{invitee.pk}:invitee_valid",
        kind="cash",
        amount=Decimal("5.00"),
        status=Reward.Status.PAID,
    )
    held = Reward.objects.create(
        rule=rule,
        campaign=live_campaign,
        beneficiary=sharer,
        source="milestone:1",
        kind="cash",
        amount=Decimal("2.50"),
        status=Reward.Status.HELD,
        hold_reason="fraud review",
    )
    return {"paid": paid, "held": held, "link": link}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_rewards_report_filters_states_and_keeps_money_exact(live_campaign, ledger, export, fmt):
    # when only held rewards are exported
    job = export("rewards", fmt, campaign=live_campaign.pk, states=["held"])
    # then one row, the amount exact
    assert job.state == ExportJob.State.DONE, job.error
    rows = csv_rows(job) if fmt == "csv" else xlsx_rows(job)
    header, *data = rows
    assert (
        header[:2] == ("id", "granted_at (Asia/Shanghai)")
        if fmt == "xlsx"
        else ["id", "granted_at (Asia/Shanghai)"]
    )
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert str(row["id"]) == str(ledger["held"].pk)
    assert row["beneficiary_nickname"] == "Sam"
    assert row["rule"] == "¥5 per valid friend"
    assert row["status"] == "held"
    assert row["hold_reason"] == "fraud review"
    if fmt == "csv":
        assert row["amount_yuan"] == "2.50"
    else:
        assert Decimal(str(row["amount_yuan"])) == Decimal("2.50")
    # and without a filter both rewards are there
    assert len(csv_rows(export("rewards", campaign=live_campaign.pk))) == 3


def test_fraud_cases_report_by_state_and_band(live_campaign, sharer, invitee, ledger, export, analyst):
    # given an open decline case for Sam and a cleared review case for Ivy
    rule_set = FraudRuleSet.objects.get(is_active=True)
    now = timezone.now()
    signals = [{"code": "shared_device", "points": 40}, {"code": "fast_join", "points": 20}]
    sam = FraudCase.objects.create(
        campaign=live_campaign,
        participant=sharer,
        rule_set=rule_set,
        score=80,
        band="decline",
        signals=signals,
        deadline=now + timedelta(hours=48),
    )
    FraudCase.objects.create(
        campaign=live_campaign,
        participant=invitee,
        rule_set=rule_set,
        score=60,
        band="review",
        signals=[],
        deadline=now,
        state="cleared",
        reviewer=analyst,
        decided_at=now,
    )
    # when open decline cases are exported
    job = export("fraud_cases", "xlsx", campaign=live_campaign.pk, state="open", band="decline")
    # then Sam's case, with its signals in words
    header, *rows = xlsx_rows(job)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["id"] == sam.pk
    assert row["score"] == 80
    assert row["signals"] == "shared_device +40, fast_join +20"
    assert row["reviewer"] is None
    # and all cases: the cleared one names its reviewer
    rows = csv_rows(export("fraud_cases", campaign=live_campaign.pk))
    assert sorted(r[rows[0].index("reviewer")] for r in rows[1:]) == ["", "ann"]


def test_payouts_report_in_yuan(live_campaign, ledger, export, ops, sharer):
    # given a paid payout of the ¥5 reward (¥1.20 of it recovering a clawback)
    batch = PayoutBatch.objects.create(name="Feb 3", created_by=ops)
    payout = Payout.objects.create(
        batch=batch,
        reward=ledger["paid"],
        openid=sharer.openid,
        amount_fen=380,
        offset_fen=120,
        out_bill_no="FB20270203000001",
        status=Payout.Status.SUCCEEDED,
    )
    # when payouts are exported
    job = export("payouts", campaign=live_campaign.pk)
    # then amounts are yuan with two places
    header, *rows = csv_rows(job)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["id"] == str(payout.pk)
    assert (row["amount_yuan"], row["offset_yuan"]) == ("3.80", "1.20")
    assert row["batch"] == "Feb 3" and row["status"] == "succeeded"
    assert row["beneficiary_id"] == str(sharer.pk)


def test_participants_and_only_sharers(live_campaign, ledger, export, sharer, invitee, second_invitee):
    # when all participants are exported
    header, *rows = csv_rows(export("participants", campaign=live_campaign.pk))
    people = {int(r[0]): dict(zip(header, r, strict=True)) for r in rows}
    # then each with their inviter and invitees
    assert set(people) == {sharer.pk, invitee.pk, second_invitee.pk}
    assert (people[sharer.pk]["invitees"], people[sharer.pk]["valid_invitees"]) == ("2", "1")
    assert people[invitee.pk]["inviter_id"] == str(sharer.pk)
    assert people[invitee.pk]["depth"] == "1" and people[invitee.pk]["status"] == "valid"
    assert people[second_invitee.pk]["invitees"] == "0"
    # and only sharers: Sam (who has a link and invitees)
    header, *rows = xlsx_rows(export("participants", "xlsx", campaign=live_campaign.pk, only_sharers=True))
    assert [r[0] for r in rows] == [sharer.pk]
    assert rows[0][header.index("blocked")] is False


def test_an_empty_report_is_a_file_with_its_header(live_campaign, export):
    job = export("rewards", "xlsx", campaign=live_campaign.pk)
    assert job.state == ExportJob.State.DONE
    assert job.row_count == 0
    assert len(xlsx_rows(job)) == 1
