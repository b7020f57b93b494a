from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Channel, PosterTemplate
from config.errors import ApplicationError


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
