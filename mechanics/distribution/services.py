"""Distribution: becoming a distributor, binding customers, expiring bindings, and deciding
who earns an order's commission (the hook the reward engine asks, see apps.py).

Concurrency: every change to one customer's bindings first locks that customer's
membership row (Referral) of the campaign, so two distributors' links opened at the same
moment are decided one after the other; the partial unique index
binding_one_active_per_customer is the backstop.
"""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ConflictError
from referrals.models import Participant, Referral, ShareLink
from referrals.services.attribution import campaign_join
from referrals.services.compliance import campaign_rules_text_refresh
from referrals.services.events import event_record

from .models import Binding, DistributionOrder, DistributionPlan, Distributor

log = logging.getLogger(__name__)


def plan_for(campaign: Campaign) -> DistributionPlan:
    """The campaign's plan, for a live distribution campaign; a clear 4xx otherwise."""
    if campaign.kind != Campaign.Kind.DISTRIBUTION:
        raise ApplicationError(
            "not_a_distribution_campaign", f"“{campaign}” is not a distribution campaign.", status=404
        )
    plan = DistributionPlan.objects.filter(campaign=campaign).first()
    if plan is None:
        raise ApplicationError(
            "distribution_not_configured", f"“{campaign}” has no distribution plan yet.", status=404
        )
    if campaign.status != Campaign.Status.LIVE:
        raise ConflictError(
            "campaign_not_live", f"“{campaign}” is {campaign.get_status_display().lower()}, not live."
        )
    return plan


def _event(distributor: Distributor, name: str, key: str, now: datetime, **properties) -> None:
    event_record(
        participant_id=distributor.participant_id,
        campaign_id=distributor.campaign_id,
        name=name,
        client_event_id=f"#dist:{distributor.campaign_id}:{key}",
        occurred_at=now,
        properties=properties or None,
    )


def distributor_apply(
    *, campaign: Campaign, participant: Participant, code: str = "", ip=None, device_id: str = "", now=None
) -> tuple[Distributor, bool]:
    """Become a distributor of a live campaign: approved at once when the plan admits anyone,
    waiting for ops otherwise. Joins the campaign first (through `code` if the participant
    arrived by a link). Free: there is no fee and nothing depends on recruiting others.
    Idempotent: applying again returns the same row, whatever its state."""
    plan = plan_for(campaign)
    now = now or timezone.now()
    existing = Distributor.objects.filter(campaign=campaign, participant=participant).first()
    if existing is not None:
        return existing, False
    campaign_join(campaign=campaign, participant=participant, code=code, ip=ip, device_id=device_id, now=now)
    open_door = plan.admission == DistributionPlan.Admission.ANYONE
    try:
        with transaction.atomic():
            distributor = Distributor.objects.create(
                campaign=campaign,
                participant=participant,
                applied_at=now,
                status=Distributor.Status.APPROVED if open_door else Distributor.Status.PENDING,
                decided_at=now if open_door else None,
                note="admitted: the plan admits anyone" if open_door else "",
            )
            _event(distributor, "distributor_applied", f"applied:{participant.pk}", now)
            if open_door:
                _event(distributor, "distributor_approved", f"approved:{participant.pk}", now)
    except IntegrityError:  # a concurrent first application won
        return Distributor.objects.get(campaign=campaign, participant=participant), False
    return distributor, True


DECISIONS = {
    # action: (states it may start from, state it leads to)
    "approve": ({Distributor.Status.PENDING, Distributor.Status.SUSPENDED}, Distributor.Status.APPROVED),
    "reject": ({Distributor.Status.PENDING}, Distributor.Status.REJECTED),
    "suspend": ({Distributor.Status.APPROVED}, Distributor.Status.SUSPENDED),
}


@transaction.atomic
def distributor_decide(*, distributor_id: int, action: str, by=None, note: str = "", now=None) -> Distributor:
    """Ops approve, reject or suspend a distributor (a suspended one earns nothing on orders
    until approved again; their bindings stay). Idempotent: deciding what is already so
    returns the row unchanged. Locks the distributor row."""
    if action not in DECISIONS:
        raise ApplicationError("distributor_action_unknown", f"Unknown action “{action}”.")
    now = now or timezone.now()
    distributor = Distributor.objects.select_for_update().get(pk=distributor_id)
    starts, to = DECISIONS[action]
    if distributor.status == to:
        return distributor
    if distributor.status not in starts:
        raise ConflictError(
            "distributor_illegal_transition",
            f"{distributor.participant_id} is {distributor.get_status_display().lower()}; cannot {action}.",
        )
    distributor.status = to
    distributor.decided_at = now
    distributor.decided_by = by
    distributor.note = note[:200]
    distributor.save(update_fields=["status", "decided_at", "decided_by", "note"])
    key = f"{to}:{distributor.participant_id}:{int(now.timestamp())}"
    _event(distributor, f"distributor_{to}", key, now)
    return distributor


def _end(binding: Binding, status: str, now: datetime, note: str = "") -> None:
    binding.status = status
    binding.ended_at = now
    binding.note = note[:200]
    binding.save(update_fields=["status", "ended_at", "note"])
    event_record(
        participant_id=binding.customer_id,
        campaign_id=binding.campaign_id,
        name=f"distribution_binding_{status}",
        client_event_id=f"#dist:{binding.campaign_id}:b{binding.pk}:end",
        occurred_at=now,
        inviter_id=binding.distributor_id,
        properties={"binding": binding.pk},
    )


def binding_bind(
    *, campaign: Campaign, customer: Participant, code: str, ip=None, device_id: str = "", now=None
) -> dict:
    """Bind `customer` to the distributor whose link (`code`) they opened.

    - no active binding (or it has expired): bound; the protection period and expiry start now;
    - bound to this same distributor: nothing changes (a retried bind is harmless);
    - bound to another within the protection period: refused, `binding_protected`;
    - bound to another after the protection period: taken over (the old one is "replaced").
    The customer joins the campaign through the same code first (attribution, fraud and the
    invite tree see them as usual). Locks the customer's membership row."""
    plan = plan_for(campaign)
    now = now or timezone.now()
    link = ShareLink.objects.filter(code=code, campaign=campaign).first()
    if link is None:
        raise ApplicationError(
            "share_link_not_found", "No share link of this campaign has this code.", status=404
        )
    if link.sharer_id == customer.pk:
        raise ConflictError("binding_self", "A distributor cannot be their own customer.")
    distributor = Distributor.objects.filter(campaign=campaign, participant_id=link.sharer_id).first()
    if distributor is None or distributor.status != Distributor.Status.APPROVED:
        raise ConflictError("not_a_distributor", "The link's sharer is not an approved distributor.")
    campaign_join(campaign=campaign, participant=customer, code=code, ip=ip, device_id=device_id, now=now)
    with transaction.atomic():
        Referral.objects.select_for_update().get(campaign=campaign, invitee=customer)
        current = Binding.objects.filter(
            campaign=campaign, customer=customer, status=Binding.Status.ACTIVE
        ).first()
        if current is not None and current.expires_at <= now:
            _end(current, Binding.Status.EXPIRED, current.expires_at, "expired before the next bind")
            current = None
        if current is not None and current.distributor_id == link.sharer_id:
            return {"binding": current, "outcome": "already_bound"}
        if current is not None and now < current.protected_until:
            raise ConflictError(
                "binding_protected",
                "This customer is bound to another distributor, protected until "
                f"{timezone.localtime(current.protected_until, campaign.tz):%Y-%m-%d %H:%M}.",
            )
        if current is not None:  # ended first: never two active bindings, not even for a moment
            _end(current, Binding.Status.REPLACED, now, f"taken over by {link.sharer_id}")
        binding = Binding.objects.create(
            campaign=campaign,
            customer=customer,
            distributor_id=link.sharer_id,
            link=link,
            bound_at=now,
            protected_until=now + timedelta(days=plan.protection_days),
            expires_at=now + timedelta(days=plan.expiry_days),
        )
        if current is not None:
            Binding.objects.filter(pk=current.pk).update(replaced_by=binding)
        event_record(
            participant_id=customer.pk,
            campaign_id=campaign.pk,
            name="distribution_bound",
            client_event_id=f"#dist:{campaign.pk}:b{binding.pk}",
            occurred_at=now,
            inviter_id=link.sharer_id,
            channel_id=link.channel_id,
            properties={"binding": binding.pk, "took_over": current.pk if current else None},
        )
    return {"binding": binding, "outcome": "replaced" if current else "bound"}


@transaction.atomic
def binding_release(*, binding_id: int, by=None, note: str = "", now=None) -> Binding:
    """Ops end an active binding now (a complaint, a mistaken bind): later orders earn the
    distributor nothing and any distributor's link may bind the customer. Idempotent."""
    now = now or timezone.now()
    binding = Binding.objects.select_for_update().get(pk=binding_id)
    if binding.status != Binding.Status.ACTIVE:
        return binding
    who = getattr(by, "username", "ops")
    _end(binding, Binding.Status.RELEASED, now, (note or f"released by {who}"))
    return binding


def bindings_expire(*, now=None, limit: int = 5000) -> int:
    """Beat: mark active bindings past their expiry as expired (with an event each). Orders
    never depend on this having run (the commission looks at the expiry time itself); it
    keeps the lists and analytics true. One short transaction per binding; rows locked by a
    concurrent bind are skipped and picked up next time. Idempotent."""
    now = now or timezone.now()
    expired = 0
    due = Binding.objects.filter(status=Binding.Status.ACTIVE, expires_at__lte=now).values_list(
        "pk", flat=True
    )
    for binding_id in list(due[:limit]):
        with transaction.atomic():
            binding = (
                Binding.objects.select_for_update(skip_locked=True)
                .filter(pk=binding_id, status=Binding.Status.ACTIVE, expires_at__lte=now)
                .first()
            )
            if binding is None:
                continue
            _end(binding, Binding.Status.EXPIRED, binding.expires_at, "expired")
            expired += 1
    return expired


def _approved(campaign_id: int, participant_id: int | None) -> bool:
    return (
        participant_id is not None
        and Distributor.objects.filter(
            campaign_id=campaign_id, participant_id=participant_id, status=Distributor.Status.APPROVED
        ).exists()
    )


def commission_levels(
    *, campaign_id: int, buyer_id: int, order_id: str, amount: Decimal, now=None
) -> dict[int, int] | None:
    """The reward engine's question (registered in referrals.services.reward_triggers
    COMMISSION_BENEFICIARIES): who earns this order's commission, by level?

    None for a campaign without a distribution plan (the invite tree decides there). Else
    level 1 is the distributor of the buyer's binding active now (not expired, distributor
    approved); level 2, only with the campaign's level-2 flag, is whoever recruited that
    distributor into the campaign (their Referral inviter), if an approved distributor too.
    No binding, no commission. The order is recorded for the distributors' lists.
    Runs under the reward engine's per-order lock, so an order is recorded once."""
    plan = DistributionPlan.objects.select_related("campaign").filter(campaign_id=campaign_id).first()
    if plan is None:
        return None
    now = now or timezone.now()
    binding = Binding.objects.filter(
        campaign_id=campaign_id, customer_id=buyer_id, status=Binding.Status.ACTIVE, expires_at__gt=now
    ).first()
    if binding is None or not _approved(campaign_id, binding.distributor_id):
        return {}
    levels = {1: binding.distributor_id}
    if plan.campaign.level2_enabled:
        recruiter = (
            Referral.objects.filter(campaign_id=campaign_id, invitee_id=binding.distributor_id)
            .values_list("inviter_id", flat=True)
            .first()
        )
        if recruiter not in (None, buyer_id) and _approved(campaign_id, recruiter):
            levels[2] = recruiter
    DistributionOrder.objects.get_or_create(
        campaign_id=campaign_id,
        order_id=order_id,
        defaults={
            "customer_id": buyer_id,
            "distributor_id": binding.distributor_id,
            "level2_id": levels.get(2),
            "binding": binding,
            "amount": amount,
            "paid_at": now,
        },
    )
    return levels


def sweep_orders_of_bound_buyers() -> Q:
    """For the reward sweeper (registered in reward_triggers.COMMISSION_SWEEP): a lost
    order task of a buyer who was ever bound is re-sent, inviter or not."""
    return Q(
        Exists(
            Binding.objects.filter(
                campaign_id=OuterRef("campaign_id"), customer_id=OuterRef("participant_id")
            )
        )
    )


# What a plan is: copied into a clone. Distributors, bindings and orders are history.
PLAN_FIELDS = ("admission", "protection_days", "expiry_days")
PLAN_FIELDS_NOT_COPIED = ("id", "campaign", "created_at", "updated_at")


def distribution_plan_clone(*, source: Campaign, clone: Campaign) -> None:
    """Copy `source`'s distribution plan into `clone` (campaigns.services.CLONE_HOOKS), and
    rewrite the clone's public rules, which describe the plan. The commission rules are
    reward rules, copied by referrals' hook; distributors, bindings and orders are not."""
    plan = DistributionPlan.objects.filter(campaign=source).first()
    if plan is None:
        return
    DistributionPlan.objects.create(campaign=clone, **{field: getattr(plan, field) for field in PLAN_FIELDS})
    campaign_rules_text_refresh(campaign_id=clone.pk)
