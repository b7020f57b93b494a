"""Fraud scoring of sharers: signals computed from stored data with their evidence, points
from the active rule set, a band, and a case for the review queue. A sharer in review or
decline has their unpaid rewards held; nothing flagged is paid until a reviewer clears it.

Each signal is one set-based query per campaign (optionally narrowed to some sharers), so
scoring a whole campaign costs a handful of statements, not one per sharer.
"""

import contextlib
import json
import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from config.errors import ConflictError
from referrals.models import FraudCase, FraudRuleSet, Participant, Payout, Referral, Reward

from .rewards import FRAUD_HOLD, RISK_CHECK_PENDING, reward_hold, reward_move, reward_release

log = logging.getLogger(__name__)

# Each query returns (sharer id, count, evidence as JSON naming at most 20 invitees; the
# count is always complete). %(c)s is the campaign; %(only)s some sharers, unless %(all)s.
SIGNALS = {
    # the invitee joined on the inviter's own device
    "shared_device": """
        SELECT r.inviter_id, count(*),
               jsonb_build_object('device', min(r.joined_device_id),
                                  'invitees', (array_agg(r.invitee_id ORDER BY r.id))[1:20])
        FROM referrals_referral r
        JOIN referrals_participant inviter ON inviter.id = r.inviter_id
        LEFT JOIN referrals_referral own ON own.campaign_id = r.campaign_id AND own.invitee_id = r.inviter_id
        WHERE r.campaign_id = %(c)s
          AND (%(all)s OR r.inviter_id = ANY(%(only)s)) AND r.joined_device_id <> ''
          AND r.joined_device_id IN (inviter.first_device_id, own.joined_device_id)
        GROUP BY r.inviter_id""",
    # the invitee opened the link from the inviter's IP with the inviter's user agent
    "same_ip_and_ua": """
        SELECT r.inviter_id, count(*),
               jsonb_build_object('ip', host(min(o.ip)), 'user_agent', min(o.user_agent),
                                  'invitees', (array_agg(r.invitee_id ORDER BY r.id))[1:20])
        FROM referrals_referral r
        JOIN referrals_shareopen o ON o.id = r.open_id
        JOIN referrals_participant inviter ON inviter.id = r.inviter_id
        WHERE r.campaign_id = %(c)s
          AND (%(all)s OR r.inviter_id = ANY(%(only)s)) AND o.ip = inviter.first_ip
          AND o.user_agent <> '' AND o.user_agent = inviter.first_user_agent
        GROUP BY r.inviter_id""",
    # more valid invitees in one hour, or one day, than a person brings
    "velocity": """
        WITH per_hour AS (
            SELECT r.inviter_id, date_trunc('hour', r.valid_at) AS hour, count(*) AS n
            FROM referrals_referral r
            WHERE r.campaign_id = %(c)s AND (%(all)s OR r.inviter_id = ANY(%(only)s))
              AND r.valid_at IS NOT NULL AND r.inviter_id IS NOT NULL
            GROUP BY 1, 2),
        per_day AS (
            SELECT inviter_id, date_trunc('day', hour) AS day, sum(n) AS n FROM per_hour GROUP BY 1, 2),
        worst_hour AS (SELECT inviter_id, max(n) AS n FROM per_hour GROUP BY 1),
        worst_day AS (SELECT inviter_id, max(n) AS n FROM per_day GROUP BY 1)
        SELECT h.inviter_id, greatest(h.n, d.n)::int,
               jsonb_build_object('most_in_an_hour', h.n, 'most_in_a_day', d.n)
        FROM worst_hour h JOIN worst_day d USING (inviter_id)
        WHERE h.n > %(velocity_per_hour)s OR d.n > %(velocity_per_day)s""",
    # open → join faster than a human could
    "fast_join": """
        SELECT r.inviter_id, count(*),
               jsonb_build_object('fastest_seconds',
                                  round(min(extract(epoch FROM r.joined_at - o.opened_at))::numeric, 2),
                                  'invitees', (array_agg(r.invitee_id ORDER BY r.id))[1:20])
        FROM referrals_referral r
        JOIN referrals_shareopen o ON o.id = r.open_id
        WHERE r.campaign_id = %(c)s AND (%(all)s OR r.inviter_id = ANY(%(only)s))
          AND r.joined_at - o.opened_at < make_interval(secs => %(fast_join_seconds)s)
        GROUP BY r.inviter_id""",
    # invitees who never qualify: yield far below the campaign's
    "low_yield": """
        WITH campaign AS (
            SELECT count(*) FILTER (WHERE valid_at IS NOT NULL)::float / nullif(count(*), 0) AS yield
            FROM referrals_referral WHERE campaign_id = %(c)s AND inviter_id IS NOT NULL),
        sharer AS (
            SELECT r.inviter_id, count(*) AS invitees, count(r.valid_at) AS valid
            FROM referrals_referral r
            WHERE r.campaign_id = %(c)s
              AND (%(all)s OR r.inviter_id = ANY(%(only)s)) AND r.inviter_id IS NOT NULL
            GROUP BY r.inviter_id)
        SELECT s.inviter_id, s.invitees - s.valid,
               jsonb_build_object('invitees', s.invitees, 'valid', s.valid,
                                  'yield', round((s.valid::float / s.invitees)::numeric, 3),
                                  'campaign_yield', round(c.yield::numeric, 3))
        FROM sharer s, campaign c
        WHERE s.invitees >= %(low_yield_min_invitees)s AND c.yield > 0
          AND s.valid::float / s.invitees < c.yield * %(low_yield_factor)s""",
    # WeChat rates the sharer as risky (getUserRiskRank, scene 1), as last looked up
    "risk_rank": """
        SELECT p.id, p.risk_rank,
               jsonb_build_object('risk_rank', p.risk_rank, 'checked_at', p.risk_checked_at)
        FROM referrals_participant p
        WHERE p.risk_rank >= %(risk_rank_at)s
          AND p.id IN (SELECT r.inviter_id FROM referrals_referral r
                       WHERE r.campaign_id = %(c)s AND (%(all)s OR r.inviter_id = ANY(%(only)s)))""",
    # the invitees' devices are shared by many participants (a phone farm)
    "device_hub": """
        WITH seen AS MATERIALIZED (  -- only the devices this campaign's invitees joined on
            SELECT DISTINCT joined_device_id AS device FROM referrals_referral
            WHERE campaign_id = %(c)s AND joined_device_id <> '' AND inviter_id IS NOT NULL
              AND (%(all)s OR inviter_id = ANY(%(only)s))),
        devices AS MATERIALIZED (  -- and how many participants each is behind, installation-wide
            SELECT device, count(DISTINCT participant) AS people FROM (
                SELECT p.first_device_id AS device, p.id AS participant
                FROM seen JOIN referrals_participant p ON p.first_device_id = seen.device
                UNION ALL
                -- written on the key expression so the ring index (migration 0015) serves it
                SELECT r.joined_device_id, r.invitee_id
                FROM seen JOIN referrals_referral r
                  ON 'd' || r.joined_device_id = 'd' || seen.device AND r.joined_device_id <> ''
            ) d GROUP BY device HAVING count(DISTINCT participant) > %(device_hub_participants)s)
        SELECT r.inviter_id, count(*),
               jsonb_build_object('devices', jsonb_object_agg(DISTINCT r.joined_device_id, d.people),
                                  'invitees', (array_agg(r.invitee_id ORDER BY r.id))[1:20])
        FROM referrals_referral r JOIN devices d ON d.device = r.joined_device_id
        WHERE r.campaign_id = %(c)s
          AND (%(all)s OR r.inviter_id = ANY(%(only)s)) AND r.inviter_id IS NOT NULL
        GROUP BY r.inviter_id""",
}


def fraud_rule_set_active() -> FraudRuleSet:
    return FraudRuleSet.objects.get(is_active=True)


@transaction.atomic
def fraud_rule_set_activate(*, rule_set_id: int, by) -> FraudRuleSet:
    """Make this version the one scoring from now on; recorded with who and when. Idempotent
    (activating the active version changes nothing). The database holds one active version."""
    chosen = FraudRuleSet.objects.select_for_update().get(pk=rule_set_id)
    if chosen.is_active:
        return chosen
    FraudRuleSet.objects.filter(is_active=True).update(is_active=False)
    chosen.is_active, chosen.activated_by, chosen.activated_at = True, by, timezone.now()
    chosen.save(update_fields=["is_active", "activated_by", "activated_at"])
    return chosen


def fraud_weekly_summary(*, cases=None, now: datetime | None = None) -> list[tuple]:
    """(campaign slug, band, state, signal, cases) for cases opened in the last 7 days, sorted."""
    since = (now or timezone.now()) - timedelta(days=7)
    counts: Counter = Counter()
    rows = (cases if cases is not None else FraudCase.objects.all()).filter(created_at__gte=since)
    for campaign, band, state, signals in rows.values_list("campaign__slug", "band", "state", "signals"):
        for signal in signals or [{"code": "-"}]:
            counts[(campaign, band, state, signal["code"])] += 1
    return [(*key, counts[key]) for key in sorted(counts)]


def fraud_score_live_campaigns() -> dict[str, int]:
    """The beat pass: every live campaign's sharers, scored."""
    from campaigns.models import Campaign

    totals: Counter = Counter()
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.LIVE).values_list("pk", flat=True):
        totals.update(fraud_score_campaign(campaign_id=campaign_id))
    return dict(totals)


def fraud_score_inviters(*, referral_ids: list[int]) -> None:
    """Score the inviters of these referrals at once (after their grants), so a sharer who
    turns suspicious has the rewards just granted held before finance sees them."""
    by_campaign: dict[int, set[int]] = defaultdict(set)
    for campaign_id, inviter_id in Referral.objects.filter(
        pk__in=referral_ids, inviter__isnull=False
    ).values_list("campaign_id", "inviter_id"):
        by_campaign[campaign_id].add(inviter_id)
    for campaign_id, inviters in by_campaign.items():
        fraud_score_campaign(campaign_id=campaign_id, sharer_ids=inviters)


def fraud_signals(*, campaign_id: int, rule_set: FraudRuleSet, sharer_ids=None) -> dict[int, list[dict]]:
    """Every signal that fires, per sharer of the campaign, with its points and evidence."""
    params = {
        **rule_set.params,
        "c": campaign_id,
        "all": sharer_ids is None,
        "only": [int(i) for i in sharer_ids or []],
    }
    found: dict[int, list[dict]] = defaultdict(list)
    with connection.cursor() as cursor:
        for code, sql in SIGNALS.items():
            points = int(rule_set.weights.get(code, 0))
            if points <= 0:
                continue
            cursor.execute(sql, params)
            for sharer_id, count, evidence in cursor.fetchall():
                if sharer_id is None:
                    continue
                if isinstance(evidence, str):  # Django reads jsonb as text; its JSONField decodes it
                    evidence = json.loads(evidence)
                found[sharer_id].append(
                    {"code": code, "points": points, "count": count, "evidence": evidence}
                )
    return found


def fraud_score_campaign(
    *, campaign_id: int, sharer_ids=None, rule_set: FraudRuleSet | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Score the campaign's sharers (or some of them) with the active rule set. A sharer in
    review or decline gets an open case (or their open case is updated) and their unpaid
    rewards in the campaign are held. A sharer whose case was already decided is not
    reopened unless their score went up. Idempotent."""
    rule_set = rule_set or fraud_rule_set_active()
    now = now or timezone.now()
    counts = {"opened": 0, "updated": 0, "held": 0}
    if settings.FISSION_RISK_RANK_ENABLED:
        counts["held"] += _check_risk(
            campaign_id=campaign_id, sharer_ids=sharer_ids, rule_set=rule_set, now=now
        )
    flagged = {}
    for sharer_id, signals in fraud_signals(
        campaign_id=campaign_id, rule_set=rule_set, sharer_ids=sharer_ids
    ).items():
        score = sum(s["points"] for s in signals)
        if rule_set.band(score) != FraudCase.Band.PASS:
            flagged[sharer_id] = (score, rule_set.band(score), signals)
    if not flagged:
        return counts
    ids = list(flagged)
    cases = {
        c.participant_id: c
        for c in FraudCase.objects.filter(
            campaign_id=campaign_id, participant_id__in=ids, state=FraudCase.State.OPEN
        )
    }
    decided: dict[int, int] = {}
    for pid, score in (
        FraudCase.objects.filter(campaign_id=campaign_id, participant_id__in=ids)
        .exclude(state=FraudCase.State.OPEN)
        .order_by("participant_id", "-decided_at")
        .values_list("participant_id", "score")
    ):
        decided.setdefault(pid, score)  # the latest decision's score
    deadline = now + timedelta(hours=int(rule_set.params.get("review_hours", 48)))
    new, changed = [], []
    for sharer_id, (score, band, signals) in flagged.items():
        case = cases.get(sharer_id)
        if case is None:
            if decided.get(sharer_id, -1) >= score:
                continue  # decided at this score already
            new.append(
                FraudCase(
                    campaign_id=campaign_id,
                    participant_id=sharer_id,
                    rule_set=rule_set,
                    score=score,
                    band=band,
                    signals=signals,
                    deadline=deadline,
                )
            )
        elif (case.score, case.band, case.signals, case.rule_set_id) != (score, band, signals, rule_set.pk):
            case.score, case.band, case.signals, case.rule_set = score, band, signals, rule_set
            case.updated_at = now
            changed.append(case)
    try:
        with transaction.atomic():
            FraudCase.objects.bulk_create(new, batch_size=1000)
    except IntegrityError:  # a concurrent pass opened some of them: one at a time, then
        new = [case for case in new if _open_one(case)]
    FraudCase.objects.bulk_update(
        changed, ["score", "band", "signals", "rule_set", "updated_at"], batch_size=1000
    )
    counts["opened"], counts["updated"] = len(new), len(changed)
    cases.update({case.participant_id: case for case in new})
    # holds, only for the sharers who have unpaid rewards not yet under a fraud review
    waiting = (
        Reward.objects.filter(
            campaign_id=campaign_id,
            beneficiary_id__in=list(cases),
            status__in=[Reward.Status.PENDING, Reward.Status.HELD, Reward.Status.APPROVED],
        )
        .exclude(hold_reason=FRAUD_HOLD)
        .values_list("beneficiary_id", flat=True)
        .distinct()
    )
    for participant_id in waiting:
        counts["held"] += _hold_unpaid(cases[participant_id])
    return counts


def _open_one(case: FraudCase) -> bool:
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError:
        return False  # already open: the other pass holds its rewards
    return True


def _check_risk(*, campaign_id: int, sharer_ids, rule_set: FraudRuleSet, now: datetime) -> int:
    """Look up WeChat's risk rank of sharers not checked lately (at most
    FISSION_RISK_RANK_PER_PASS a pass; the rest next time). Fail closed: when WeChat cannot
    answer, the sharer's unpaid rewards are held ("risk check pending") until a later lookup
    succeeds. Returns rewards held."""
    from referrals import wechat

    stale = now - timedelta(hours=int(rule_set.params.get("risk_recheck_hours", 24)))
    sharers = Participant.objects.filter(
        pk__in=Referral.objects.filter(campaign_id=campaign_id, inviter__isnull=False).values("inviter_id")
    ).filter(Q(risk_checked_at__isnull=True) | Q(risk_checked_at__lt=stale))
    if sharer_ids is not None:
        sharers = sharers.filter(pk__in=list(sharer_ids))
    held = 0
    for participant in sharers.order_by("risk_checked_at", "pk")[: settings.FISSION_RISK_RANK_PER_PASS]:
        try:
            rank = wechat.risk_rank(openid=participant.openid, client_ip=participant.first_ip or "")
        except Exception as exc:  # any failure (no IP to ask about, too) holds: fail closed
            log.warning(
                "risk rank of participant %s unavailable (%s): holding", participant.pk, type(exc).__name__
            )
            for reward_id in _unpaid_of(campaign_id, participant.pk).exclude(
                hold_reason__startswith=FRAUD_HOLD
            ):
                with contextlib.suppress(ConflictError):
                    reward_hold(
                        reward_id=reward_id, note="WeChat risk check failed", reason=RISK_CHECK_PENDING
                    )
                    held += 1
            continue
        Participant.objects.filter(pk=participant.pk).update(risk_rank=rank, risk_checked_at=now)
        for reward_id in _unpaid_of(campaign_id, participant.pk).filter(hold_reason=RISK_CHECK_PENDING):
            reward_release(reward_id=reward_id, note=f"WeChat risk rank {rank}")
    return held


def _unpaid_of(campaign_id: int, participant_id: int):
    live = Payout.live().values("reward_id")
    return (
        Reward.objects.filter(
            campaign_id=campaign_id,
            beneficiary_id=participant_id,
            status__in=[Reward.Status.PENDING, Reward.Status.HELD, Reward.Status.APPROVED],
        )
        .exclude(pk__in=live)
        .values_list("pk", flat=True)
    )


def _unpaid(case: FraudCase):
    return _unpaid_of(case.campaign_id, case.participant_id)


def _hold_unpaid(case: FraudCase) -> int:
    held = 0
    for reward_id in _unpaid(case).exclude(hold_reason=FRAUD_HOLD):  # a pending risk hold is upgraded
        try:
            reward_hold(reward_id=reward_id, note=f"fraud case {case.pk}: score {case.score} ({case.band})")
        except ConflictError:
            continue  # paid or moved since
        held += 1
    return held


@transaction.atomic
def fraud_case_decide(
    *, case_id: int, decision: str, by, note: str = "", note_to_participant: str = ""
) -> FraudCase:
    """A fraud reviewer decides. Clear: the held rewards are released. Confirm: the unpaid
    rewards are voided (their budget released) and the participant can earn no more.
    Recorded with reviewer and time. Deciding a decided case again changes nothing."""
    case = FraudCase.objects.select_for_update().get(pk=case_id)
    if case.state != FraudCase.State.OPEN:
        return case
    if decision not in (FraudCase.State.CLEARED, FraudCase.State.CONFIRMED):
        raise ConflictError("fraud_decision_unknown", "Decide “cleared” or “confirmed”.")
    if _about_reviewer(case, by):
        raise ConflictError(
            "fraud_own_case",
            f"Case {case.pk} is about you or your identity ring: another fraud reviewer decides it.",
        )
    for reward_id in _unpaid(case):
        if decision == FraudCase.State.CLEARED:
            reward_release(reward_id=reward_id, by=by, note=f"fraud case {case.pk} cleared")
        else:
            reward_move(
                reward_id=reward_id, to=Reward.Status.VOIDED, by=by, note=f"fraud case {case.pk} confirmed"
            )
    if decision == FraudCase.State.CONFIRMED:
        Participant.objects.filter(pk=case.participant_id).update(is_blocked=True)
    case.state, case.reviewer, case.decided_at = decision, by, timezone.now()
    case.note, case.note_to_participant = note[:300], note_to_participant[:200]
    case.save(update_fields=["state", "reviewer", "decided_at", "note", "note_to_participant", "updated_at"])
    if decision == FraudCase.State.CONFIRMED:
        _propagate_to_ring(case)
    return case


def _about_reviewer(case: FraudCase, by) -> bool:
    """Whether the case is about the reviewer: its participant, or anyone in its identity
    ring, is one of the reviewer's own mini-program accounts (Participant.staff_user)."""
    from .fraud_rings import fraud_ring_of

    if by is None or by.pk is None:
        return False
    mine = set(Participant.objects.filter(staff_user_id=by.pk).values_list("pk", flat=True))
    if not mine:
        return False
    return case.participant_id in mine or bool(mine.intersection(fraud_ring_of(case.participant_id)))


def _propagate_to_ring(case: FraudCase) -> int:
    """A confirmed fraudster's identity ring (shared devices, IP + user agent, payout account)
    gets cases of its own in the campaign, in decline, with their rewards held: a reviewer
    looks at each. Members without rewards or referrals in the campaign are left alone."""
    from .fraud_rings import fraud_ring_of

    ring = [p for p in fraud_ring_of(case.participant_id) if p != case.participant_id]
    if not ring:
        return 0
    involved = set(
        Reward.objects.filter(campaign_id=case.campaign_id, beneficiary_id__in=ring).values_list(
            "beneficiary_id", flat=True
        )
    ) | set(
        Referral.objects.filter(campaign_id=case.campaign_id, inviter_id__in=ring).values_list(
            "inviter_id", flat=True
        )
    )
    opened = 0
    rule_set = case.rule_set
    for member in sorted(involved):
        if FraudCase.objects.filter(
            campaign_id=case.campaign_id, participant_id=member, state=FraudCase.State.OPEN
        ).exists():
            continue
        signal = {
            "code": "ring_of_confirmed",
            "points": rule_set.decline_at,
            "count": len(ring) + 1,
            "evidence": {
                "confirmed": case.participant_id,
                "case": case.pk,
                "ring": sorted([*ring, case.participant_id])[:20],
            },
        }
        new = FraudCase.objects.create(
            campaign_id=case.campaign_id,
            participant_id=member,
            rule_set=rule_set,
            score=rule_set.decline_at,
            band=FraudCase.Band.DECLINE,
            signals=[signal],
            deadline=timezone.now() + timedelta(hours=int(rule_set.params.get("review_hours", 48))),
        )
        _hold_unpaid(new)
        opened += 1
    return opened


def fraud_backtest(*, rule_set: FraudRuleSet, days: int = 7, now: datetime | None = None) -> dict:
    """What activating `rule_set` would change, replayed over the campaigns with referrals in
    the last `days` days, against the open cases now. Writes nothing.

    Returns counts of cases that would open, close (fall to pass) and change band, and the
    unpaid reward money that would be newly held or released."""
    now = now or timezone.now()
    campaign_ids = (
        Referral.objects.filter(joined_at__gte=now - timedelta(days=days))
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    result = {
        "would_open": 0,
        "would_close": 0,
        "would_change_band": 0,
        "held_money": Decimal("0.00"),
        "released_money": Decimal("0.00"),
        "campaigns": 0,
    }
    unpaid = [Reward.Status.PENDING, Reward.Status.HELD, Reward.Status.APPROVED]
    for campaign_id in campaign_ids:
        result["campaigns"] += 1
        bands = {}
        for sharer_id, signals in fraud_signals(campaign_id=campaign_id, rule_set=rule_set).items():
            bands[sharer_id] = rule_set.band(sum(s["points"] for s in signals))
        open_cases = dict(
            FraudCase.objects.filter(campaign_id=campaign_id, state=FraudCase.State.OPEN).values_list(
                "participant_id", "band"
            )
        )
        opening = [p for p, band in bands.items() if band != FraudCase.Band.PASS and p not in open_cases]
        closing = [p for p in open_cases if bands.get(p, FraudCase.Band.PASS) == FraudCase.Band.PASS]
        result["would_open"] += len(opening)
        result["would_close"] += len(closing)
        result["would_change_band"] += sum(
            1
            for p, band in open_cases.items()
            if bands.get(p, FraudCase.Band.PASS) not in (band, FraudCase.Band.PASS)
        )
        money = Reward.objects.filter(campaign_id=campaign_id, kind="cash", status__in=unpaid)
        result["held_money"] += money.filter(beneficiary_id__in=opening).aggregate(s=Sum("amount"))["s"] or 0
        result["released_money"] += (
            money.filter(beneficiary_id__in=closing).aggregate(s=Sum("amount"))["s"] or 0
        )
    return result


def fraud_rings_pass(*, now: datetime | None = None) -> int:
    """Beat, every 10 minutes: the identity rings (fraud_rings) of the whole installation. A
    ring holding a confirmed (blocked) fraudster, or whose members' mean score in a campaign
    reaches review, opens cases for its members taking part in that campaign, with their
    rewards held. Members already in an open case, or decided at that score, are left alone.
    Returns cases opened."""
    from .fraud_rings import fraud_rings

    now = now or timezone.now()
    rule_set = fraud_rule_set_active()
    rings = fraud_rings()
    ring_of = {member: root for root, members in rings.items() for member in members}
    if not ring_of:
        return 0
    blocked = set(
        Participant.objects.filter(pk__in=list(ring_of), is_blocked=True).values_list("pk", flat=True)
    )
    scores: dict[tuple[int, int], int] = {}
    open_now: set[tuple[int, int]] = set()
    for campaign_id, pid, score, state in (
        FraudCase.objects.filter(participant_id__in=list(ring_of))
        .order_by("campaign_id", "participant_id", "-created_at")
        .values_list("campaign_id", "participant_id", "score", "state")
    ):
        scores.setdefault((campaign_id, pid), score)
        if state == FraudCase.State.OPEN:
            open_now.add((campaign_id, pid))
    taking_part: dict[tuple[int, int], set[int]] = defaultdict(set)  # (campaign, ring) → members
    for campaign_id, pid in (
        Referral.objects.filter(inviter_id__in=list(ring_of))
        .values_list("campaign_id", "inviter_id")
        .distinct()
    ):
        taking_part[(campaign_id, ring_of[pid])].add(pid)
    for campaign_id, pid in (
        Reward.objects.filter(beneficiary_id__in=list(ring_of))
        .values_list("campaign_id", "beneficiary_id")
        .distinct()
    ):
        taking_part[(campaign_id, ring_of[pid])].add(pid)
    opened = 0
    deadline = now + timedelta(hours=int(rule_set.params.get("review_hours", 48)))
    for (campaign_id, root), members in sorted(taking_part.items()):
        ring = rings[root]
        confirmed = sorted(blocked & set(ring))
        mean = sum(scores.get((campaign_id, m), 0) for m in ring) / len(ring)
        if not confirmed and mean < rule_set.review_at:
            continue
        score = rule_set.decline_at if confirmed else max(round(mean), rule_set.review_at)
        signal = {
            "code": "ring",
            "points": score,
            "count": len(ring),
            "evidence": {"ring": ring[:20], "mean_score": round(mean, 1), "confirmed": confirmed[:20]},
        }
        for member in sorted(members - blocked):
            if (campaign_id, member) in open_now or scores.get((campaign_id, member), -1) >= score:
                continue
            case = FraudCase(
                campaign_id=campaign_id,
                participant_id=member,
                rule_set=rule_set,
                score=score,
                band=rule_set.band(score),
                signals=[signal],
                deadline=deadline,
            )
            if _open_one(case):
                _hold_unpaid(case)
                opened += 1
    return opened
