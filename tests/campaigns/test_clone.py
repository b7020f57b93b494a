from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Channel, PosterTemplate
from config.errors import ApplicationError
from referrals.models import CouponCode, Referral, Reward, RewardCap, RewardRule, ShareLink
from referrals.services import attribution, compliance, coupons, rewards
from referrals.services.clone import RULE_FIELDS, RULE_FIELDS_NOT_COPIED, reward_rules_clone
from tests.conftest import share_link_for

R = RewardRule


def rule(campaign, **fields) -> RewardRule:
    defaults = {
        "name": "Friend counts: ¥5",
        "trigger": R.Trigger.INVITEE_VALID,
        "kind": R.Kind.CASH,
        "amount_kind": R.AmountKind.FIXED,
        "amount": Decimal("5.00"),
        "hold_hours": 72,
    }
    return RewardRule.objects.create(campaign=campaign, **(defaults | fields))


def test_clone_copies_settings_channels_and_templates_but_not_history(
    make_campaign, make_template, with_channels, ops
):
    # given an ended campaign with spend on its channels and a template
    source = make_campaign(
        kind=Campaign.Kind.GREETING_CARD,
        valid_event_name="resume_completed",
        valid_property="completeness",
        valid_threshold=Decimal("0.6"),
        budget_daily=Decimal("100.00"),
        rules_text="Invite friends.",
    )
    with_channels(source)
    make_template(source, is_default=True)
    services.campaign_launch(campaign_id=source.pk, by=ops)
    services.campaign_end(campaign_id=source.pk, by=ops)
    # when
    clone = services.campaign_clone(campaign_id=source.pk, by=ops)
    # then the settings came along…
    assert clone.pk != source.pk
    assert clone.status == Campaign.Status.DRAFT
    assert clone.slug == f"{source.slug}-copy"
    assert clone.cloned_from == source
    assert clone.owner == ops
    for field in (
        "kind",
        "goal_target",
        "budget_total",
        "budget_daily",
        "valid_event_name",
        "valid_property",
        "valid_threshold",
        "rules_text",
        "time_zone",
        "attribution_window_hours",
    ):
        assert getattr(clone, field) == getattr(source, field), field
    assert sorted(clone.channels.values_list("code", flat=True)) == ["kol", "moments"]
    template = clone.templates.get()
    assert template.is_default and template.width == 400 and template.height == 700
    assert template.background.name != source.templates.get().background.name
    # …and the history did not
    assert clone.transitions.count() == 0
    assert clone.status_changed_at is None
    assert set(clone.channels.values_list("spend", flat=True)) == {Decimal("0.00")}
    assert source.channels.get(code="moments").spend == Decimal("300.50")


def test_clone_twice_gets_distinct_slugs(make_campaign, ops):
    source = make_campaign()
    first = services.campaign_clone(campaign_id=source.pk, by=ops)
    second = services.campaign_clone(campaign_id=source.pk, by=ops)
    assert {first.slug, second.slug} == {f"{source.slug}-copy", f"{source.slug}-copy-2"}


def test_clone_with_new_start_keeps_the_duration(make_campaign, ops):
    source = make_campaign()
    start = timezone.now() + timedelta(days=30)
    clone = services.campaign_clone(campaign_id=source.pk, by=ops, starts_at=start, name="Next year")
    assert clone.name == "Next year"
    assert clone.starts_at == start
    assert clone.ends_at - clone.starts_at == source.ends_at - source.starts_at


def test_clone_with_a_taken_slug_is_refused_and_creates_nothing(make_campaign, with_channels, ops):
    source = make_campaign()
    with_channels(source)
    other = make_campaign()
    counts = (Campaign.objects.count(), Channel.objects.count(), PosterTemplate.objects.count())
    with pytest.raises(ApplicationError) as refused:
        services.campaign_clone(campaign_id=source.pk, by=ops, slug=other.slug)
    assert refused.value.code == "campaign_clone_invalid"
    assert "slug" in refused.value.fields
    assert (Campaign.objects.count(), Channel.objects.count(), PosterTemplate.objects.count()) == counts


# --- reward rules (the referrals hook) ---------------------------------------------------
def test_referrals_registers_its_hook_first():
    assert services.CLONE_HOOKS[0] is reward_rules_clone


def test_each_reward_rule_field_is_either_copied_or_deliberately_not():
    fields = {field.name for field in RewardRule._meta.concrete_fields}
    assert fields == set(RULE_FIELDS) | set(RULE_FIELDS_NOT_COPIED)
    assert not set(RULE_FIELDS) & set(RULE_FIELDS_NOT_COPIED)


def test_clone_copies_every_reward_rule_active_or_not_and_writes_the_rules_text(make_campaign, ops):
    # given a campaign with four rules of every shape, one switched off, and no rules text yet
    source = make_campaign(valid_event_name="resume_completed")
    rule(
        source,
        name="Friend counts",
        cap_per_participant=10,
        cap_per_participant_daily=3,
        cap_per_device=2,
        hold_hours=24,
        release_event="active_day7",
    )
    rule(
        source,
        name="Lucky friend",
        is_active=False,
        amount_kind=R.AmountKind.RANDOM,
        amount=None,
        amount_min=Decimal("1.00"),
        amount_max=Decimal("3.00"),
    )
    rule(
        source,
        name="Five friends",
        trigger=R.Trigger.MILESTONE,
        milestone=5,
        kind=R.Kind.POINTS,
        amount=None,
        points=50,
    )
    rule(
        source,
        name="Welcome",
        trigger=R.Trigger.EVENT,
        trigger_event="resume_completed",
        beneficiary=R.Beneficiary.INVITEE,
        kind=R.Kind.COUPON,
        amount=Decimal("20.00"),
        hold_hours=0,
    )
    assert source.reward_rules_text == ""
    # when
    clone = services.campaign_clone(campaign_id=source.pk, by=ops)
    # then each rule has its copy, field for field, in the same order
    originals = list(source.reward_rules.order_by("id"))
    copies = list(clone.reward_rules.order_by("id"))
    assert [r.name for r in copies] == ["Friend counts", "Lucky friend", "Five friends", "Welcome"]
    for original, copy in zip(originals, copies, strict=True):
        assert copy.pk != original.pk
        for field in RULE_FIELDS:
            assert getattr(copy, field) == getattr(original, field), (original.name, field)
    assert not clone.reward_rules.get(name="Lucky friend").is_active
    assert source.reward_rules.count() == 4  # the original keeps its own
    # …and the clone's public reward rules are written from its (active) rules
    clone.refresh_from_db()
    assert clone.reward_rules_text == compliance.rules_text(clone)
    assert "at most 10 times; at most 3 a day; paid after active_day7" in clone.reward_rules_text
    assert "50 points when 5 friends you invited count" in clone.reward_rules_text
    assert "random" not in clone.reward_rules_text  # the switched-off rule is not published


def test_clone_copies_no_history_of_the_rules(live_campaign, sharer, invitee, ops):
    # given a live campaign that paid a capped cash reward and gave out a coupon code
    cash = rule(live_campaign, cap_per_participant=1, cap_per_device=1)
    coupon = rule(
        live_campaign,
        name="Coupon",
        trigger=R.Trigger.EVENT,
        trigger_event="resume_completed",
        beneficiary=R.Beneficiary.INVITEE,
        kind=R.Kind.COUPON,
        amount=Decimal("20.00"),
    )
    coupons.coupon_codes_upload(rule_id=coupon.pk, text="SPRING-1\nSPRING-2")
    attribution.campaign_join(
        campaign=live_campaign, participant=invitee, code=share_link_for(live_campaign, sharer).code
    )
    rewards.reward_grant(
        rule=cash, beneficiary_id=sharer.pk, source="referral:1:invitee_valid", device_id="d1"
    )
    rewards.reward_grant(rule=coupon, beneficiary_id=invitee.pk, source="event:1")
    assert RewardCap.objects.filter(key__startswith=f"r{cash.pk}:").count() == 2
    # when
    clone = services.campaign_clone(campaign_id=live_campaign.pk, by=ops)
    # then the rules came along…
    cash_copy, coupon_copy = clone.reward_rules.order_by("id")
    assert (cash_copy.cap_per_participant, cash_copy.cap_per_device) == (1, 1)
    # …but not the rewards, the cap counters, the coupon codes, the members or their links
    assert not Reward.objects.filter(campaign=clone).exists()
    assert not Reward.objects.filter(rule__campaign=clone).exists()
    assert not RewardCap.objects.filter(key__startswith=f"r{cash_copy.pk}:").exists()
    assert not CouponCode.objects.filter(rule__campaign=clone).exists()
    assert not Referral.objects.filter(campaign=clone).exists()
    assert not ShareLink.objects.filter(campaign=clone).exists()
    clone.refresh_from_db()
    assert (clone.budget_reserved, clone.budget_spent) == (0, 0)
    # the original's are untouched
    assert Reward.objects.filter(campaign=live_campaign).count() == 2
    assert coupon.coupon_codes.count() == 2
    assert RewardCap.objects.filter(key__startswith=f"r{cash.pk}:").count() == 2
    # a coupon rule without codes may not launch: ops upload a new bank for the copy
    with pytest.raises(ApplicationError) as refused:
        services.campaign_launch(campaign_id=clone.pk, by=ops)
    assert "[coupon_codes_needed]" in refused.value.message
    coupons.coupon_codes_upload(rule_id=coupon_copy.pk, text="SUMMER-1")
    assert services.campaign_launch(campaign_id=clone.pk, by=ops).status == Campaign.Status.LIVE


def test_a_hook_that_fails_leaves_no_draft_and_no_copied_files(
    make_campaign, make_template, with_channels, ops, monkeypatch
):
    # given a campaign with channels, a poster template and rules, and a hook that fails
    # after the rules were copied
    source = make_campaign()
    with_channels(source)
    make_template(source, is_default=True)
    rule(source)
    seen = []

    def failing_hook(*, source, clone):
        seen.append(list(clone.reward_rules.values_list("name", flat=True)))
        raise RuntimeError("the mechanic's copy broke")

    monkeypatch.setattr(services, "CLONE_HOOKS", [*services.CLONE_HOOKS, failing_hook])
    media = Path(settings.MEDIA_ROOT)
    files = sorted(media.rglob("*.*"))
    assert len(files) == 1  # the original's background
    counts = (
        Campaign.objects.count(),
        Channel.objects.count(),
        PosterTemplate.objects.count(),
        RewardRule.objects.count(),
    )
    # when
    with pytest.raises(RuntimeError, match="the mechanic's copy broke"):
        services.campaign_clone(campaign_id=source.pk, by=ops)
    # then the hook ran last, inside the clone (the rules were there)…
    assert seen == [["Friend counts: ¥5"]]
    # …and nothing of the clone is left: no rows, and no copy of the background
    assert (
        Campaign.objects.count(),
        Channel.objects.count(),
        PosterTemplate.objects.count(),
        RewardRule.objects.count(),
    ) == counts
    assert not Campaign.objects.filter(cloned_from=source).exists()
    assert sorted(media.rglob("*.*")) == files
    # and the next clone works
    assert services.CLONE_HOOKS.pop() is failing_hook
    assert services.campaign_clone(campaign_id=source.pk, by=ops).reward_rules.count() == 1
