"""The reports that can be exported. Each streams its rows; none holds a large result in memory.

Times are shown in the campaign's time zone (the writer converts them); date ranges are
campaign-local days, both ends included.
"""

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce

from campaigns.models import Campaign
from config.errors import ApplicationError
from referrals.models import FraudCase, Payout, Referral, Reward, ShareLink

from .registry import Column, Context, Param, Report, register

CHUNK = 2000


def campaign_of(params: dict) -> Campaign:
    """The campaign a job is about; gone since the job was queued means the job fails cleanly."""
    try:
        return Campaign.objects.get(pk=params["campaign"])
    except Campaign.DoesNotExist:
        raise ApplicationError(
            "campaign_not_found", f"Campaign {params['campaign']} no longer exists."
        ) from None


def local_range(campaign: Campaign, date_from: str, date_to: str) -> tuple[datetime, datetime]:
    """[start of date_from, start of the day after date_to) in the campaign's zone, as aware times."""
    tz = campaign.tz
    start = datetime.combine(date.fromisoformat(date_from), time.min, tzinfo=tz)
    end = datetime.combine(date.fromisoformat(date_to) + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def streamed(queryset, fields: list[str]):
    """values_list rows from a server-side cursor, CHUNK at a time."""
    return queryset.values_list(*fields).iterator(chunk_size=CHUNK)


CAMPAIGN = Param("campaign", "campaign", "Campaign")
DATE_FROM = Param("date_from", "date", "From (campaign-local day)")
DATE_TO = Param("date_to", "date", "To (campaign-local day, included)")


# --- raw events ----------------------------------------------------------------------------
def _csv_text(column: str) -> str:
    """A mini-program string as a spreadsheet must see it: a leading = + - @ would make Excel
    run it as a formula (CSV injection), so such a value gets a leading apostrophe."""
    # ascii() of the first character: no measurable cost, where left(…) IN (…) took ~10 % of COPY.
    starts_formula = f"ascii({column}) IN (9, 13, 43, 45, 61, 64)"  # tab, CR, + - = @
    return f"CASE WHEN {starts_formula} THEN '''' || {column} ELSE {column} END"


EVENT_COLUMNS = (
    Column("id", "int"),
    Column("received_at", "datetime"),
    Column("occurred_at", "datetime"),
    Column("participant_id", "int"),
    Column("name"),
    Column("source"),
    Column("inviter_id", "int"),
    Column("channel_id", "int"),
    Column("client_event_id"),
    Column("properties"),
)


def _events_where(params: dict) -> tuple[str, list, Campaign]:
    campaign = campaign_of(params)
    start, end = local_range(campaign, params["date_from"], params["date_to"])
    where = "e.campaign_id = %s AND e.received_at >= %s AND e.received_at < %s"
    args: list = [campaign.pk, start, end]
    if params.get("event_names"):
        where += " AND e.name = ANY(%s)"
        args.append(params["event_names"])
    return where, args, campaign


SOURCE_SQL = "CASE e.source WHEN 1 THEN 'client' WHEN 2 THEN 'server' ELSE 'system' END"


def events_copy_sql(params: dict) -> tuple[str, list]:
    """Already formatted for the CSV: local times without zone, text guarded against formulas."""
    where, args, campaign = _events_where(params)
    sql = (
        "SELECT e.id, e.received_at AT TIME ZONE %s, e.occurred_at AT TIME ZONE %s, e.participant_id, "  # noqa: S608
        f"{_csv_text('e.name')}, {SOURCE_SQL}, e.inviter_id, e.channel_id, {_csv_text('e.client_event_id')}, "
        f"e.properties FROM referrals_event e WHERE {where}"
    )
    return sql, [campaign.time_zone, campaign.time_zone, *args]


def events_rows(params: dict, context: Context):
    """From a server-side cursor; properties as JSON text (decoding jsonb only to encode it again
    would cost more than the rest of the row)."""
    where, args, _ = _events_where(params)
    sql = (
        f"SELECT e.id, e.received_at, e.occurred_at, e.participant_id, e.name, {SOURCE_SQL}, e.inviter_id, "  # noqa: S608
        f"e.channel_id, e.client_event_id, e.properties::text FROM referrals_event e WHERE {where}"
    )
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, args)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def events_xlsx_rows(params: dict, context: Context):
    """As events_rows, with the times as Excel serial day numbers in the campaign's zone, as
    text: the database computes and prints them far faster than Python parses timestamps,
    converts them and prints floats."""
    where, args, campaign = _events_where(params)
    serial = "(date_part('epoch', {} AT TIME ZONE %s) / 86400.0 + 25569)::text"
    sql = (
        f"SELECT e.id, {serial.format('e.received_at')}, {serial.format('e.occurred_at')}, e.participant_id, "  # noqa: S608
        f"e.name, {SOURCE_SQL}, e.inviter_id, e.channel_id, e.client_event_id, e.properties::text "
        f"FROM referrals_event e WHERE {where}"
    )
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [campaign.time_zone, campaign.time_zone, *args])
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def events_estimate(params: dict) -> int | None:
    """The planner's estimate: counting a day range of the log exactly would cost a scan."""
    import json

    where, args, _ = _events_where(params)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM referrals_event e WHERE {where}", args)  # noqa: S608
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


register(
    Report(
        name="events",
        title="Raw events",
        description="Every event of a campaign received in a date range, optionally only some event names.",
        params=(
            CAMPAIGN,
            DATE_FROM,
            DATE_TO,
            Param(
                "event_names",
                "names",
                "Event names",
                required=False,
                help="Comma-separated, e.g. share,open,register. Empty: all.",
            ),
        ),
        columns=EVENT_COLUMNS,
        rows=events_rows,
        xlsx_rows=events_xlsx_rows,
        copy_sql=events_copy_sql,
        estimate=events_estimate,
    )
)


# --- rewards ------------------------------------------------------------------------------
def rewards_rows(params: dict, context: Context):
    campaign = campaign_of(params)
    rewards = Reward.objects.filter(campaign=campaign).order_by("id")
    if params.get("states"):
        rewards = rewards.filter(status__in=params["states"])
    return streamed(
        rewards,
        [
            "id",
            "created_at",
            "beneficiary_id",
            "beneficiary__nickname",
            "rule__name",
            "source",
            "kind",
            "amount",
            "points",
            "status",
            "hold_reason",
            "payable_at",
            "updated_at",
        ],
    )


def _count(queryset_for):
    return lambda params: queryset_for(params).count()


def _rewards_qs(params):
    qs = Reward.objects.filter(campaign_id=params["campaign"])
    return qs.filter(status__in=params["states"]) if params.get("states") else qs


register(
    Report(
        name="rewards",
        title="Rewards",
        description="The reward ledger of a campaign, optionally only some states.",
        params=(
            CAMPAIGN,
            Param("states", "choices", "States", required=False, choices=tuple(Reward.Status.choices)),
        ),
        columns=(
            Column("id", "int"),
            Column("granted_at", "datetime"),
            Column("beneficiary_id", "int"),
            Column("beneficiary_nickname"),
            Column("rule"),
            Column("source"),
            Column("kind"),
            Column("amount_yuan", "decimal"),
            Column("points", "int"),
            Column("status"),
            Column("hold_reason"),
            Column("payable_at", "datetime"),
            Column("updated_at", "datetime"),
        ),
        rows=rewards_rows,
        estimate=_count(_rewards_qs),
    )
)


# --- fraud cases --------------------------------------------------------------------------
def _cases_qs(params):
    cases = FraudCase.objects.filter(campaign_id=params["campaign"])
    if params.get("state"):
        cases = cases.filter(state=params["state"])
    if params.get("band"):
        cases = cases.filter(band=params["band"])
    return cases.order_by("id")


def fraud_cases_rows(params: dict, context: Context):
    campaign_of(params)
    rows = streamed(
        _cases_qs(params),
        [
            "id",
            "created_at",
            "participant_id",
            "participant__nickname",
            "score",
            "band",
            "signals",
            "state",
            "deadline",
            "reviewer__username",
            "decided_at",
            "note",
            "rule_set__version",
        ],
    )
    for row in rows:
        signals = ", ".join(f"{s['code']} +{s['points']}" for s in row[6] or [])
        yield (*row[:6], signals, *row[7:])


register(
    Report(
        name="fraud_cases",
        title="Fraud cases",
        description="Fraud cases of a campaign with their score, band, signals and decision.",
        params=(
            CAMPAIGN,
            Param("state", "choice", "State", required=False, choices=tuple(FraudCase.State.choices)),
            Param("band", "choice", "Band", required=False, choices=tuple(FraudCase.Band.choices)),
        ),
        columns=(
            Column("id", "int"),
            Column("opened_at", "datetime"),
            Column("participant_id", "int"),
            Column("participant_nickname"),
            Column("score", "int"),
            Column("band"),
            Column("signals"),
            Column("state"),
            Column("deadline", "datetime"),
            Column("reviewer"),
            Column("decided_at", "datetime"),
            Column("note"),
            Column("rule_set_version", "int"),
        ),
        rows=fraud_cases_rows,
        estimate=_count(_cases_qs),
    )
)


# --- payouts ------------------------------------------------------------------------------
def _payouts_qs(params):
    payouts = Payout.objects.filter(reward__campaign_id=params["campaign"])
    if params.get("states"):
        payouts = payouts.filter(status__in=params["states"])
    return payouts.order_by("id")


def payouts_rows(params: dict, context: Context):
    from decimal import Decimal

    campaign_of(params)
    rows = streamed(
        _payouts_qs(params),
        [
            "id",
            "created_at",
            "batch__name",
            "reward_id",
            "reward__beneficiary_id",
            "attempt",
            "openid",
            "amount_fen",
            "offset_fen",
            "out_bill_no",
            "status",
            "provider_state",
            "transfer_bill_no",
            "fail_reason",
            "updated_at",
        ],
    )
    cent = Decimal("0.01")
    for row in rows:
        yield (*row[:7], Decimal(row[7]) * cent, Decimal(row[8]) * cent, *row[9:])


register(
    Report(
        name="payouts",
        title="Payouts",
        description="Payout attempts of a campaign's rewards (WeChat Pay transfers), optionally only some "
        "states.",
        params=(
            CAMPAIGN,
            Param("states", "choices", "States", required=False, choices=tuple(Payout.Status.choices)),
        ),
        columns=(
            Column("id", "int"),
            Column("created_at", "datetime"),
            Column("batch"),
            Column("reward_id", "int"),
            Column("beneficiary_id", "int"),
            Column("attempt", "int"),
            Column("openid"),
            Column("amount_yuan", "decimal"),
            Column("offset_yuan", "decimal"),
            Column("out_bill_no"),
            Column("status"),
            Column("provider_state"),
            Column("transfer_bill_no"),
            Column("fail_reason"),
            Column("updated_at", "datetime"),
        ),
        rows=payouts_rows,
        estimate=_count(_payouts_qs),
    )
)


# --- participants and sharers -------------------------------------------------------------
def _invitees(campaign_id: int, **filters):
    """The number of a member's direct invitees in the campaign (index referral_by_inviter)."""
    invites = Referral.objects.filter(campaign_id=campaign_id, inviter_id=OuterRef("invitee_id"), **filters)
    counted = invites.order_by().values("inviter_id").annotate(n=Count("id")).values("n")[:1]
    return Coalesce(Subquery(counted), 0)


def _participants_qs(params):
    cid = params["campaign"]
    members = Referral.objects.filter(campaign_id=cid)
    if params.get("only_sharers"):
        # A sharer: someone with a share link in the campaign or an invitee.
        members = members.filter(
            Exists(ShareLink.objects.filter(campaign_id=cid, sharer_id=OuterRef("invitee_id")))
            | Exists(Referral.objects.filter(campaign_id=cid, inviter_id=OuterRef("invitee_id")))
        )
    return members.order_by("id")


def participants_rows(params: dict, context: Context):
    campaign = campaign_of(params)
    members = _participants_qs(params).annotate(
        invitees=_invitees(campaign.pk), valid_invitees=_invitees(campaign.pk, status=Referral.Status.VALID)
    )
    return streamed(
        members,
        [
            "invitee_id",
            "invitee__openid",
            "invitee__nickname",
            "joined_at",
            "status",
            "valid_at",
            "inviter_id",
            "root_id",
            "depth",
            "channel__code",
            "invitees",
            "valid_invitees",
            "invitee__is_blocked",
        ],
    )


register(
    Report(
        name="participants",
        title="Participants and sharers",
        description="Everyone who joined a campaign with their inviter, depth, channel and invitees; "
        "or only the sharers.",
        params=(
            CAMPAIGN,
            Param(
                "only_sharers",
                "bool",
                "Only sharers",
                required=False,
                help="Only participants with a share link or an invitee.",
            ),
        ),
        columns=(
            Column("participant_id", "int"),
            Column("openid"),
            Column("nickname"),
            Column("joined_at", "datetime"),
            Column("status"),
            Column("valid_at", "datetime"),
            Column("inviter_id", "int"),
            Column("root_id", "int"),
            Column("depth", "int"),
            Column("channel"),
            Column("invitees", "int"),
            Column("valid_invitees", "int"),
            Column("blocked", "bool"),
        ),
        rows=participants_rows,
        estimate=_count(_participants_qs),
    )
)
