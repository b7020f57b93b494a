"""The campaign cockpit in the admin: who may see it, what it shows, how many queries it costs."""

import json
import re

import pytest
from django.contrib.auth.models import Permission, User
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


def test_staff_who_may_not_open_the_cockpit_are_not_shown_its_link(client, live_campaign):
    viewer = User.objects.create_user("vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(viewer)
    changelist = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    change = client.get(reverse("admin:campaigns_campaign_change", args=[live_campaign.pk])).content.decode()
    assert live_campaign.name in changelist
    assert cockpit_url(live_campaign) not in changelist and cockpit_url(live_campaign) not in change


def test_campaign_list_and_change_page_link_the_cockpit(admin_client, live_campaign):
    url = cockpit_url(live_campaign)
    changelist = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    change_url = reverse("admin:campaigns_campaign_change", args=[live_campaign.pk])
    change = admin_client.get(change_url).content.decode()
    assert f'href="{url}"' in changelist
    assert f'href="{url}"' in change


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row of a table on the page."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def small_campaign(live_campaign, sharer, invitee, second_invitee):
    """Sam joins and shares twice; Ivy and Ike open his link and join; Ivy's resume makes her
    valid. Written through the real services, then folded into the analytics tables."""
    from django.utils import timezone

    from analytics.services.rebuild import analytics_rebuild
    from referrals.services import attribution
    from referrals.services.events import events_ingest
    from referrals.services.server_events import server_events_ingest
    from tests.conftest import share_link_for

    link = share_link_for(live_campaign, sharer)
    now = timezone.now().isoformat()
    shares = [{"id": f"s{i}", "type": "share", "time": now, "campaign": live_campaign.slug} for i in (1, 2)]
    events_ingest(participant_id=sharer.pk, events=shares, batch_key="shares")
    for n, friend in enumerate([invitee, second_invitee]):
        attribution.share_link_open(code=link.code, opener=friend, client_event_id=f"o{n}")
        attribution.campaign_join(campaign=live_campaign, participant=friend, code=link.code)
    resume = {
        "id": "r1",
        "type": "resume_completed",
        "openid": invitee.openid,
        "campaign": live_campaign.slug,
        "time": timezone.now().isoformat(),  # after her join
        "properties": {"completeness": 0.8},
    }
    server_events_ingest(events=[resume], batch_key="resume")
    analytics_rebuild(campaign_id=live_campaign.pk)
    return live_campaign


def test_cockpit_shows_the_numbers_of_a_small_hand_built_campaign(client, analyst, small_campaign):
    # given Sam's campaign (3 joined, 1 valid of a goal of 1,000)
    client.force_login(analyst)
    # when the analyst opens the cockpit
    html = client.get(cockpit_url(small_campaign)).content.decode()
    # then the burn-up, the funnel and the channels say so
    assert '<span class="value" data-kpi="pacing:0">1 / 1,000</span>' in html
    assert '<span class="value" data-kpi="pacing:1">0.1%</span>' in html
    funnel = {row[0]: row[1] for row in cells(html, "table-funnel")}
    assert list(funnel.values())[:4] == ["1", "2", "2", "1"]  # shared, opened, joined, valid
    total = cells(html, "table-channels")[-1]
    assert total[:3] == ["Total", "3", "1"]  # joins, valid
    assert '<span class="value" data-kpi="virality:5">1 / 1</span>' in html  # referred valid / all valid
    specs = chart_specs(html)
    assert specs["chart-funnel"]["data"][0]["x"][:4] == [1, 2, 2, 1]


def test_alert_banner_when_the_campaign_is_behind_its_pace(client, analyst, make_campaign):
    # given a live campaign a day into its ten days, nobody valid yet
    from analytics.services.rebuild import analytics_rebuild
    from campaigns.models import Campaign

    behind = make_campaign(status=Campaign.Status.LIVE, goal_target=5000)
    analytics_rebuild(campaign_id=behind.pk)
    client.force_login(analyst)
    # when the cockpit is opened
    html = client.get(cockpit_url(behind)).content.decode()
    # then the banner is there
    assert 'role="alert" id="cockpit-pace-alert"' in html


def test_no_alert_banner_before_the_campaign_starts(client, analyst, make_campaign):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign

    soon = make_campaign(
        status=Campaign.Status.SCHEDULED,
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=5),
    )
    client.force_login(analyst)
    html = client.get(cockpit_url(soon)).content.decode()
    assert "cockpit-pace-alert" not in html


# Committed transactions: the fold's temporary tables are dropped at commit, so a second fold
# inside the test's single transaction would find the first one's.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_cockpit_query_count_is_pinned_and_does_not_grow_with_participants(
    client, analyst, small_campaign, make_participant, django_assert_num_queries
):
    from analytics.services.rebuild import analytics_rebuild
    from referrals.services import attribution
    from tests.conftest import share_link_for

    # given a warm session (the first request loads the session and permissions once)
    client.force_login(analyst)
    client.get(cockpit_url(small_campaign))
    # then the page costs a pinned number of queries
    with django_assert_num_queries(PINNED_COCKPIT_QUERIES):
        assert client.get(cockpit_url(small_campaign)).status_code == 200
    # and the same with more participants, a deeper tree and another sharer
    ivy = small_campaign.referrals.get(depth=1, valid_at__isnull=False).invitee
    link = share_link_for(small_campaign, ivy)
    for n in range(4):
        friend = make_participant()
        attribution.share_link_open(code=link.code, opener=friend, client_event_id=f"more-{n}")
        attribution.campaign_join(campaign=small_campaign, participant=friend, code=link.code)
    analytics_rebuild(campaign_id=small_campaign.pk)
    with django_assert_num_queries(PINNED_COCKPIT_QUERIES):
        assert client.get(cockpit_url(small_campaign)).status_code == 200


# Pinned: session, user, permissions (2), the campaign, the eight tiles' selector calls (29:
# each reads its derived tables and the counter row's fold time) and the weekly fraud summary.
# A change here means a tile started to query more (or less) – never per row.
PINNED_COCKPIT_QUERIES = 35


def test_a_sharer_segment_links_to_exactly_its_participants(client, analyst, small_campaign, sharer):
    # given Sam, the campaign's one sharer, who is its top 1% by downstream valid users
    segments = selectors.sharers(small_campaign)["segments"]
    assert segments["super_spreaders"]["participant_ids"] == [sharer.pk]
    client.force_login(analyst)
    html = client.get(cockpit_url(small_campaign)).content.decode()
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if "Super-spreaders" in r)
    href = re.search(r'href="([^"]+)"', row).group(1).replace("&amp;", "&")
    # when the analyst follows the segment's link
    response = client.get(href)
    # then the participant list shows Sam and nobody else
    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [sharer.pk]


def test_dropoff_csv_lists_who_joined_but_did_not_become_valid(
    client, analyst, small_campaign, invitee, second_invitee
):
    # given Ivy and Ike joined through Sam's link and only Ivy became valid
    client.force_login(analyst)
    url = reverse("admin:campaigns_campaign_dropoffs", args=[small_campaign.pk, "valid"])
    # when the drop-off list of the "valid" step is downloaded
    body = b"".join(client.get(url).streaming_content).decode("utf-8-sig")
    # then it holds Ike alone
    lines = body.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].split(",")[0] == str(second_invitee.pk)


def test_retention_cells_of_days_not_over_are_marked_incomplete(client, analyst, small_campaign):
    client.force_login(analyst)
    html = client.get(cockpit_url(small_campaign)).content.decode()
    matrix = re.search(r'<table id="table-retention">.*?</table>', html, re.S).group(0)
    # today's cohort: day 1 has not passed yet
    assert 'class="num incomplete"' in matrix and "day not over yet" in matrix


def test_times_are_shown_in_the_campaign_s_time_zone(client, analyst, make_campaign):
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from campaigns.models import Campaign

    berlin = make_campaign(status=Campaign.Status.LIVE, time_zone="Europe/Berlin")
    client.force_login(analyst)
    html = client.get(cockpit_url(berlin)).content.decode()
    built = re.search(r"Page built at <time>([^<]+)</time>", html).group(1)
    here = timezone.localtime(timezone.now(), ZoneInfo("Europe/Berlin"))
    assert "<strong>Europe/Berlin</strong>" in html
    assert (
        abs((timezone.make_aware(timezone.datetime.fromisoformat(built), here.tzinfo) - here).total_seconds())
        < 60
    )
    starts = timezone.localtime(berlin.starts_at, ZoneInfo("Europe/Berlin"))
    assert f"{starts:%Y-%m-%d %H:%M} →" in html
