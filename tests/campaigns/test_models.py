from decimal import Decimal

import pytest

from campaigns.models import Campaign


@pytest.mark.parametrize(
    ("comparison", "value", "expected"),
    [
        ("gte", 0.6, True),
        ("gte", "0.62", True),
        ("gte", 0.59, False),
        ("gt", 0.6, False),
        ("eq", "0.6000", True),
        ("lt", 0.5, True),
        ("lte", 0.7, False),
        ("gte", "NaN", False),
        ("gte", "not a number", False),
        ("gte", None, False),
    ],
)
def test_valid_user_rule_compares_the_property(comparison, value, expected):
    campaign = Campaign(
        valid_event_name="resume_completed",
        valid_property="completeness",
        valid_comparison=comparison,
        valid_threshold=Decimal("0.6"),
    )
    props = {"completeness": value} if value is not None else {}
    assert campaign.event_makes_valid(event_name="resume_completed", properties=props) is expected


def test_valid_user_rule_needs_the_right_event():
    campaign = Campaign(valid_event_name="order_paid")
    assert campaign.event_makes_valid(event_name="order_paid", properties={}) is True
    assert campaign.event_makes_valid(event_name="order_refunded", properties={}) is False


def test_valid_user_rule_in_words():
    campaign = Campaign(
        valid_event_name="resume_completed",
        valid_property="completeness",
        valid_comparison="gte",
        valid_threshold=Decimal("0.6000"),
        valid_within_hours=168,
    )
    assert (
        campaign.valid_user_rule_text() == "resume_completed with completeness ≥ 0.6 within 168 h of joining"
    )
