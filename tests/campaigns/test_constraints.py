"""The database holds the invariants even when code skips validation (bulk writes, raw SQL, bugs)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign, Channel, PosterTemplate


def base_fields(**overrides):
    now = timezone.now()
    fields = {
        "name": "C",
        "slug": "c",
        "starts_at": now,
        "ends_at": now + timedelta(days=1),
        "goal_target": 10,
    }
    fields.update(overrides)
    return fields


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"ends_at": timezone.now() - timedelta(days=1)}, "campaign_ends_after_start"),
        ({"budget_total": Decimal("-0.01")}, "campaign_budget_(total_not_negative|never_overspent)"),
        (
            {"budget_total": Decimal("10"), "budget_reserved": Decimal("8"), "budget_spent": Decimal("2.01")},
            "campaign_budget_never_overspent",
        ),
        ({"budget_reserved": Decimal("-1")}, "campaign_budget_never_overspent"),
        ({"budget_daily": Decimal("-1")}, "campaign_budget_daily_not_negative"),
        ({"goal_target": 0}, "campaign_goal_positive"),
        ({"attribution_window_hours": 0}, "campaign_attribution_window_positive"),
        ({"status": "bogus"}, "campaign_status_known"),
        ({"kind": "pyramid"}, "campaign_kind_known"),
        ({"valid_property": "completeness"}, "campaign_valid_property_has_threshold"),
        ({"valid_threshold": Decimal("0.6")}, "campaign_valid_property_has_threshold"),
    ],
)
def test_campaign_constraints(overrides, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Campaign.objects.create(**base_fields(**overrides))
    assert Campaign.objects.count() == 0


@pytest.mark.django_db
def test_slug_is_unique():
    Campaign.objects.create(**base_fields())
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(**base_fields(name="Other"))
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_channel_code_unique_per_campaign_and_spend_not_negative():
    campaign = Campaign.objects.create(**base_fields())
    other = Campaign.objects.create(**base_fields(slug="d"))
    Channel.objects.create(campaign=campaign, code="moments", name="Moments")
    Channel.objects.create(campaign=other, code="moments", name="Moments")  # fine: another campaign
    with pytest.raises(IntegrityError, match="channel_code_unique_per_campaign"), transaction.atomic():
        Channel.objects.create(campaign=campaign, code="moments", name="Again")
    with pytest.raises(IntegrityError, match="channel_spend_not_negative"), transaction.atomic():
        Channel.objects.create(campaign=campaign, code="kol", name="KOL", spend=Decimal("-5"))


def test_one_default_template_per_campaign(make_campaign, make_template):
    campaign = make_campaign()
    make_template(campaign, is_default=True)
    with pytest.raises(IntegrityError, match="postertemplate_one_default_per_campaign"), transaction.atomic():
        make_template(campaign, is_default=True, name="Second", validate=False)
    assert PosterTemplate.objects.count() == 1


def test_second_default_template_gets_a_readable_validation_message(make_campaign, make_template):
    from django.core.exceptions import ValidationError

    campaign = make_campaign()
    make_template(campaign, is_default=True)
    with pytest.raises(ValidationError, match="already has a default template"):
        make_template(campaign, is_default=True, name="Second")


def test_model_validation_explains_what_is_wrong(make_campaign):
    from django.core.exceptions import ValidationError

    now = timezone.now()
    campaign = Campaign(
        **base_fields(
            ends_at=now - timedelta(hours=1),
            valid_property="completeness",
            budget_total=Decimal("10"),
            budget_daily=Decimal("20"),
            time_zone="Mars/Olympus",
        )
    )
    with pytest.raises(ValidationError) as invalid:
        campaign.full_clean()
    errors = invalid.value.message_dict
    assert "end after it starts" in errors["ends_at"][0]
    assert "threshold" in errors["valid_threshold"][0]
    assert "daily budget" in errors["budget_daily"][0]
    assert "Mars/Olympus" in errors["time_zone"][0]
