"""The cockpit of a simulated campaign in a real (headless) Chromium: every chart is drawn
by plotly.js with the traces and points the page was given, and the numbers a person reads
are the database's. Run by `make browser-test` (marker `browser`)."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models import Q, Sum
from django.urls import reverse

from analytics.cockpit import formatting as fmt
from analytics.services.rebuild import analytics_rebuild
from campaigns.models import Campaign
from referrals.models import FraudCase, Referral, Reward
from simulator.engine import simulate

# serialized_rollback: the flush after each test would drop the roles and rule sets that
# migrations made, which later tests (and the other test modules) need.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHARTS = 12
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "cockpit-browser.png"


def valid_new_users(campaign: Campaign) -> int:
    """METRICS.md, straight from the ledger: valid, first joined during the campaign, not a
    member of another campaign before it, and not voided by a confirmed fraud case (of the
    participant or of their direct inviter)."""
    confirmed = FraudCase.objects.filter(campaign=campaign, state=FraudCase.State.CONFIRMED).values(
        "participant_id"
    )
    earlier = Referral.objects.filter(joined_at__lt=campaign.starts_at).exclude(campaign=campaign)
    return (
        Referral.objects.filter(
            campaign=campaign,
            valid_at__isnull=False,
            joined_at__gte=campaign.starts_at,
            joined_at__lt=campaign.ends_at,
        )
        .exclude(invitee_id__in=confirmed)
        .exclude(Q(inviter_id__in=confirmed))
        .exclude(invitee_id__in=earlier.values("invitee_id"))
        .count()
    )


def reward_sum(campaign: Campaign, status: str) -> Decimal:
    rewards = Reward.objects.filter(campaign=campaign, status=status)
    return rewards.aggregate(s=Sum("amount"))["s"] or Decimal(0)


@pytest.fixture
def simulated() -> Campaign:
    simulate(campaign_slug="browser", participants=120, days=2.0, seed=7, fraud_rings=1, ring_size=5)
    campaign = Campaign.objects.get(slug="browser")
    analytics_rebuild(campaign_id=campaign.pk)
    return campaign


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + reverse("admin:login"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def kpi(page, tile: str, label: str) -> str:
    item = page.locator(f"#{tile} .cockpit-kpis li").filter(has=page.locator(".label", has_text=label)).first
    return item.locator(".value").inner_text().strip()


# What each drawn chart holds, read from plotly's own graph object and its SVG.
CHART_STATE = """
el => ({
  id: el.getAttribute("data-chart"),
  state: el.getAttribute("data-chart-state"),
  svg: el.querySelectorAll("svg.main-svg").length,
  traces: (el.data || []).length,
  points: (el.data || []).map(t => (t.type === "heatmap" ? (t.z || []).length : (t.x || t.y || []).length)),
  drawnTraces: el.querySelectorAll("svg .trace, svg .hm").length,
  spec: JSON.parse(document.getElementById(el.getAttribute("data-chart")).textContent).data.length,
})
"""


def test_cockpit_of_a_simulated_campaign_draws_its_charts_with_the_database_numbers(
    live_server, chromium, simulated, analyst_login
):
    # given a simulated campaign folded into the analytics tables, and what the ledger says
    campaign = simulated
    campaign.refresh_from_db()
    valid = valid_new_users(campaign)
    joins = Referral.objects.filter(campaign=campaign).count()
    open_review = FraudCase.objects.filter(
        campaign=campaign, state=FraudCase.State.OPEN, band=FraudCase.Band.REVIEW
    ).count()
    held = reward_sum(campaign, Reward.Status.HELD)
    paid = reward_sum(campaign, Reward.Status.PAID)
    left = campaign.budget_total - campaign.budget_reserved - campaign.budget_spent
    url = live_server.url + reverse("admin:campaigns_campaign_cockpit", args=[campaign.pk])
    assert valid > 0 and joins > valid

    # when an analyst opens its cockpit in Chromium
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, live_server.url, *analyst_login)
        page.goto(url)
        page.wait_for_function(
            f"document.querySelectorAll('[data-chart][data-chart-state=drawn]').length === {CHARTS}",
            timeout=30_000,
        )
        charts = [page.evaluate(CHART_STATE, el) for el in page.query_selector_all("[data-chart]")]
        burnup_rows = page.locator("#table-pacing tbody tr").count()
        funnel_bars = page.locator("[data-chart=chart-funnel] svg .trace .point").count()
        figures = {
            "valid": kpi(page, "pacing", campaign.get_goal_metric_display()),
            "completion": kpi(page, "pacing", "Completion"),
            "held": kpi(page, "money", "Rewards held"),
            "paid": kpi(page, "money", "Rewards paid"),
            "review": kpi(page, "money", "Open fraud cases: review"),
            "budget": kpi(page, "money", "Budget left"),
        }
        total_joins = page.locator("#table-channels tbody tr").last.locator("td").nth(1).inner_text()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)  # for people to look at

    # then every chart is drawn as SVG with exactly the traces and points it was given
    assert errors == []
    assert len(charts) == CHARTS
    for chart in charts:
        assert chart["state"] == "drawn" and chart["svg"] >= 1, chart
        assert chart["traces"] == chart["spec"] >= 1, chart
        assert chart["drawnTraces"] >= 1, chart
    by_id = {c["id"]: c for c in charts}
    assert by_id["chart-pacing"]["points"] == [burnup_rows, burnup_rows] and burnup_rows > 0
    assert funnel_bars == 5
    assert by_id["chart-last-hour-events"]["points"] == [60] * by_id["chart-last-hour-events"]["traces"]
    # and the numbers are the ledger's
    assert figures["valid"] == f"{valid:,} / {campaign.goal_target:,}"
    assert figures["completion"] == fmt.percent(valid / campaign.goal_target)
    assert figures["held"] == fmt.yuan(held)
    assert figures["paid"] == fmt.yuan(paid)
    assert figures["review"] == f"{open_review:,}"
    assert figures["budget"].startswith(fmt.yuan(left) + " of ")
    assert total_joins.strip() == f"{joins:,}"


def test_campaign_list_shows_the_same_completion_as_the_cockpit(
    live_server, chromium, simulated, analyst_login
):
    campaign = simulated
    valid = valid_new_users(campaign)
    expected = f"{valid * 100 / campaign.goal_target:.1f}%"
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, live_server.url, *analyst_login)
        page.goto(live_server.url + reverse("admin:campaigns_campaign_changelist"))
        row = page.locator("#result_list tbody tr").filter(has_text=campaign.name)
        progress = row.locator("td.field-progress small").inner_text()
        cockpit_link = row.locator("td.field-pages a", has_text="Cockpit").get_attribute("href")
    assert progress == expected
    assert cockpit_link == reverse("admin:campaigns_campaign_cockpit", args=[campaign.pk])


def test_pace_alert_banner_when_the_last_15_minutes_are_slower_than_required(
    live_server, chromium, make_campaign, analyst_login
):
    # given a live campaign a day into its ten days with nobody valid yet: behind pace
    behind = make_campaign(slug="behind", status=Campaign.Status.LIVE, goal_target=5000)
    analytics_rebuild(campaign_id=behind.pk)
    url = live_server.url + reverse("admin:campaigns_campaign_cockpit", args=[behind.pk])
    # when the analyst opens its cockpit
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, live_server.url, *analyst_login)
        page.goto(url)
        banner = page.get_by_role("alert")
        visible, text = banner.is_visible(), banner.inner_text().strip()
        required = kpi(page, "pacing", "Required rate")
    # then a banner says so, above the tiles
    assert visible and text
    assert required.endswith("/min") and required != "0.00 /min"
