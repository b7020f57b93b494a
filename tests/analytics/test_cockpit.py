"""The campaign cockpit in the admin: who may see it, what it shows, how many queries it costs."""

import json
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from analytics import selectors
from analytics.cockpit import tiles

TITLES = ["Goal burn-up", "Last 60 minutes", "Funnel", "Retention", "Virality", "Sharers", "Channels"]
TITLES += ["Reviews and money"]
CHART_IDS = [
    "chart-pacing",
    "chart-last-hour-events",
    "chart-last-hour-channels",
    "chart-funnel",
    "chart-retention",
    "chart-k-by-day",
    "chart-k-by-generation",
    "chart-depth",
    "chart-quadrant",
    "chart-concentration",
    "chart-channels",
    "chart-burn",
]


def cockpit_url(campaign, **query) -> str:
    url = reverse("admin:campaigns_campaign_cockpit", args=[campaign.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def chart_specs(html: str) -> dict[str, dict]:
    """The JSON each chart is drawn from (json_script tags), by chart id."""
    found = re.findall(r'<script id="(chart-[\w-]+)" type="application/json">(.*?)</script>', html, re.S)
    return {chart_id: json.loads(body) for chart_id, body in found}


@pytest.fixture
def staff_without_analytics(db) -> User:
    return User.objects.create_user("stan", password="pw-stan-123", is_staff=True)


def test_analyst_sees_every_tile_with_its_chart_data(client, analyst, live_campaign):
    # given an analyst
    client.force_login(analyst)
    # when they open the cockpit of a live campaign
    response = client.get(cockpit_url(live_campaign))
    # then every tile is there, each chart with its data as JSON, and the page refreshes itself
    html = response.content.decode()
    assert response.status_code == 200
    for title in TITLES:
        assert f">{title}</h2>" in html
    assert sorted(chart_specs(html)) == sorted(CHART_IDS)
    assert 'id="cockpit-autorefresh"' in html and 'data-seconds="60"' in html
    assert "Asia/Shanghai" in html
    assert "analytics/vendor/plotly.min.js" in html


def test_campaign_manager_may_see_the_cockpit(client, ops, live_campaign):
    client.force_login(ops)
    assert client.get(cockpit_url(live_campaign)).status_code == 200


def test_staff_without_the_analytics_permission_is_refused(client, staff_without_analytics, live_campaign):
    client.force_login(staff_without_analytics)
    response = client.get(cockpit_url(live_campaign))
    assert response.status_code == 403
    dropoffs = reverse("admin:campaigns_campaign_dropoffs", args=[live_campaign.pk, "join"])
    assert client.get(dropoffs).status_code == 403


def test_anonymous_and_non_staff_go_to_the_login_page(client, analyst, live_campaign):
    response = client.get(cockpit_url(live_campaign))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    # an analyst who lost staff status keeps the permission but not the admin
    analyst.is_staff = False
    analyst.save()
    client.force_login(analyst)
    response = client.get(cockpit_url(live_campaign))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_unknown_campaign_is_404(client, analyst):
    client.force_login(analyst)
    assert client.get(reverse("admin:campaigns_campaign_cockpit", args=[999_999])).status_code == 404


def test_ended_campaign_does_not_refresh_itself(client, analyst, make_campaign):
    from campaigns.models import Campaign

    campaign = make_campaign(status=Campaign.Status.ENDED)
    client.force_login(analyst)
    html = client.get(cockpit_url(campaign)).content.decode()
    assert "cockpit-autorefresh" not in html


@pytest.mark.parametrize(
    ("kind", "basis"),
    [("classic", "calendar"), ("on_or_after", "rolling"), ("cumulative", "calendar"), ("nonsense", "x")],
)
def test_retention_definition_is_chosen_by_query_parameters(client, analyst, live_campaign, kind, basis):
    client.force_login(analyst)
    html = client.get(cockpit_url(live_campaign, retention=kind, basis=basis)).content.decode()
    chosen = tiles.RetentionOptions.from_query({"retention": kind, "basis": basis})
    # the chosen definition is stated and marked current; the others are links
    assert tiles.KIND_LABELS[chosen.kind] in html
    assert f'<strong aria-current="true">{tiles.KIND_LABELS[chosen.kind]}</strong>' in html
    assert f'<strong aria-current="true">{tiles.BASIS_LABELS[chosen.basis]}</strong>' in html


def test_dropoff_list_downloads_as_csv_for_excel(client, analyst, live_campaign):
    client.force_login(analyst)
    response = client.get(reverse("admin:campaigns_campaign_dropoffs", args=[live_campaign.pk, "join"]))
    body = b"".join(response.streaming_content).decode("utf-8")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header = "participant_id,joined_at,first_open_at,valid_at,channel_id,referrer_id,shares"
    assert body.startswith("\ufeff" + header)
    rows = list(selectors.funnel_dropoffs(live_campaign, step="join"))
    assert len(body.strip().splitlines()) == 1 + len(rows)


def test_dropoff_list_of_an_unknown_step_is_404(client, analyst, live_campaign):
    client.force_login(analyst)
    url = reverse("admin:campaigns_campaign_dropoffs", args=[live_campaign.pk, "nope"])
    assert client.get(url).status_code == 404


def test_every_funnel_step_after_the_first_links_its_dropoff_list(client, analyst, live_campaign):
    client.force_login(analyst)
    html = client.get(cockpit_url(live_campaign)).content.decode()
    for step in tiles.FUNNEL_STEPS[1:]:
        assert reverse("admin:campaigns_campaign_dropoffs", args=[live_campaign.pk, step]) in html
    assert reverse("admin:campaigns_campaign_dropoffs", args=[live_campaign.pk, "share"]) not in html


def test_campaign_list_and_change_page_link_the_cockpit(admin_client, live_campaign):
    url = cockpit_url(live_campaign)
    changelist = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    change_url = reverse("admin:campaigns_campaign_change", args=[live_campaign.pk])
    change = admin_client.get(change_url).content.decode()
    assert f'href="{url}"' in changelist
    assert f'href="{url}"' in change


def test_cockpit_query_count_is_pinned(client, analyst, live_campaign, django_assert_num_queries):
    # given a warm session (the first request loads the session and permissions once)
    client.force_login(analyst)
    client.get(cockpit_url(live_campaign))
    # then the page costs: session, user, permissions (2), campaign, one call per tile
    with django_assert_num_queries(PINNED_COCKPIT_QUERIES):
        assert client.get(cockpit_url(live_campaign)).status_code == 200


# Pinned: each tile is one selector call. A change here means a tile started to query more.
PINNED_COCKPIT_QUERIES = 6
