"""Qualifying events reported by the business backend, server to server.

Unlike mini-program events (which a client could forge), these may change state: an
event that meets a campaign's valid-user definition marks the invitee *valid*.
"""

import re

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign
from referrals.models import Event, Referral, RewardRule

from .attribution import referral_mark_valid
from .events import Outcome, append, attribute, campaign_ids_by_slug, reject, summarize, validate
from .reward_triggers import rewards_release_on_events

# Ids that Fission writes start with "#", which a client's event id cannot contain, so
# neither a mini program nor a business backend can take (or block) another's id.
SERVER_PREFIX = "#s:"


OPENID_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")


def _identities(events: list, field: str) -> set[str]:
    return {
        e[field]
        for e in events
        if isinstance(e, dict) and isinstance(e.get(field), str) and OPENID_RE.match(e[field])
    }


def _participant_ids(events: list) -> dict[tuple[str, str], int]:
    openids = _identities(events, "openid")
    unionids = _identities(events, "unionid")
    found: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        if openids:
            cursor.execute(
                "SELECT openid, id FROM referrals_participant WHERE app_id = %s AND openid = ANY(%s)",
                [settings.WECHAT_APP_ID, list(openids)],
            )
            found.update({("openid", o): pid for o, pid in cursor.fetchall()})
        if unionids:
            cursor.execute(
                "SELECT DISTINCT ON (unionid) unionid, id FROM referrals_participant "
                "WHERE unionid = ANY(%s) ORDER BY unionid, id",
                [list(unionids)],
            )
            found.update({("unionid", u): pid for u, pid in cursor.fetchall()})
    return found


def server_events_ingest(*, events: list, batch_key: str, now=None) -> dict:
    """Take up to 500 server events. Idempotent by event id; valid-user marking is a
    conditional UPDATE, so a replay never re-dates or double-counts."""
    now = now or timezone.now()
    identities = _participant_ids(events)
    slugs = {e["campaign"] for e in events if isinstance(e, dict) and isinstance(e.get("campaign"), str)}
    campaign_ids = campaign_ids_by_slug(slugs)

    outcomes: list[Outcome | None] = [None] * len(events)
    per_participant: dict[int, list[tuple[int, dict]]] = {}
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            outcomes[i] = reject(None, "event_not_object", "Each event must be a JSON object.")
            continue
        key = ("openid", event.get("openid")) if event.get("openid") else ("unionid", event.get("unionid"))
        pid = identities.get(key) if isinstance(key[1], str) else None
        if pid is None:
            outcomes[i] = reject(
                event.get("id") if isinstance(event.get("id"), str) else None,
                "participant_unknown",
                "No participant has this openid/unionid; they must log in first.",
            )
            continue
        per_participant.setdefault(pid, []).append((i, event))

    rows = []
    for pid, items in per_participant.items():
        sub_outcomes, sub_rows = validate(
            [e for _, e in items],
            participant_id=pid,
            campaign_ids=campaign_ids,
            now=now,
            prefix=SERVER_PREFIX,
        )
        for (i, _), outcome in zip(items, sub_outcomes, strict=True):
            outcomes[i] = outcome
        for row in sub_rows:
            row.index = items[row.index][0]
            rows.append(row)
    attribute(rows)

    campaigns = {
        c.pk: c for c in Campaign.objects.filter(pk__in={r.campaign_id for r in rows if r.campaign_id})
    }
    made_valid: set[int] = set()
    valid_referrals: list[int] = []
    with transaction.atomic():
        written, earlier = append(rows, source=Event.Source.SERVER, batch_key=batch_key, now=now)
        for row in rows:
            campaign = campaigns.get(row.campaign_id)
            if (
                row.index in written
                and campaign is not None
                and campaign.event_makes_valid(
                    event_name=row.name, properties=row.extra.get("properties") or {}
                )
                and referral_mark_valid(
                    campaign=campaign,
                    participant_id=row.participant_id,
                    event_name=row.name,
                    occurred_at=row.occurred_at,
                    made_valid=valid_referrals,
                )
            ):
                made_valid.add(row.index)
        rewards_release_on_events([r for r in rows if r.index in written], now=now)
    _valid_after_commit(valid_referrals)
    _orders_after_commit([r for r in rows if r.index in written])
    _acts_after_commit([r for r in rows if r.index in written])
    # A retry of the same batch answers as the first time did, "made_valid" included:
    # this event made them valid if the membership carries its name and time.
    retried = [r for r in rows if r.index not in written and earlier.get(r.index) == "accepted"]
    if retried:
        stamps = set(
            Referral.objects.filter(
                invitee_id__in={r.participant_id for r in retried},
                campaign_id__in={r.campaign_id for r in retried},
            ).values_list("invitee_id", "campaign_id", "valid_event", "valid_at")
        )
        made_valid |= {
            r.index for r in retried if (r.participant_id, r.campaign_id, r.name, r.occurred_at) in stamps
        }
    for row in rows:
        status = "accepted" if row.index in written else earlier[row.index]
        outcomes[row.index] = Outcome(row.client_event_id.removeprefix(SERVER_PREFIX), status)
    result = summarize(outcomes, batch_key)
    for i, item in enumerate(result["results"]):
        if i in made_valid:
            item["made_valid"] = True
    return result


ORDER_EVENTS = {"order_paid", "order_refunded"}


GRANT_CHUNK = 500


def _valid_after_commit(referral_ids: list[int]) -> None:
    """The batch's new valid invitees are granted their rewards in batches, after commit."""
    from referrals.tasks import rewards_for_referrals_task

    for i in range(0, len(referral_ids), GRANT_CHUNK):
        chunk = referral_ids[i : i + GRANT_CHUNK]
        transaction.on_commit(lambda chunk=chunk: rewards_for_referrals_task.delay(chunk, "invitee_valid"))


def _acts_after_commit(rows) -> None:
    """Events that an active "another server event" rule rewards go to the grant task."""
    from referrals.tasks import rewards_for_act_task

    wanted = set(
        RewardRule.objects.filter(
            is_active=True,
            trigger=RewardRule.Trigger.EVENT,
            campaign_id__in={r.campaign_id for r in rows if r.campaign_id},
        ).values_list("campaign_id", "trigger_event")
    )
    for row in rows:
        if (row.campaign_id, row.name) not in wanted:
            continue
        source = f"event:{row.participant_id}:{row.client_event_id.removeprefix(SERVER_PREFIX)}"
        args = (row.campaign_id, row.participant_id, RewardRule.Trigger.EVENT, source[:80], row.name)
        transaction.on_commit(lambda args=args: rewards_for_act_task.delay(*args))


def _orders_after_commit(rows) -> None:
    """Commissions and refunds hang on these events; they run after the batch commits."""
    from decimal import Decimal, InvalidOperation

    from referrals.tasks import order_event_task

    for row in rows:
        if row.name not in ORDER_EVENTS or row.campaign_id is None:
            continue
        props = row.extra.get("properties") or {}
        order_id = str(props.get("order_id", ""))[:60]
        if not order_id:
            continue
        amount = ""
        if row.name == "order_paid":
            try:
                amount = str(Decimal(str(props.get("amount"))).quantize(Decimal("0.01")))
            except (InvalidOperation, ValueError):
                continue
            if Decimal(amount) <= 0:
                continue
        args = (row.name, row.campaign_id, row.participant_id, order_id, amount)
        transaction.on_commit(lambda args=args: order_event_task.delay(*args))
