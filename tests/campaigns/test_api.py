from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign

S = Campaign.Status
PUBLIC_FIELDS = {"slug", "name", "kind", "status", "description", "starts_at", "ends_at", "time_zone"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert body["message"]
    return body


def test_list_shows_live_campaigns_with_public_fields_only(client, make_campaign):
    live = make_campaign(status=S.LIVE, budget_total=123)
    for status in (S.DRAFT, S.SCHEDULED, S.PAUSED, S.ENDED, S.ARCHIVED):
        make_campaign(status=status)
    body = client.get("/api/v1/campaigns/").json()
    assert body["count"] == 1
    [item] = body["results"]
    assert item["slug"] == live.slug
    assert set(item) == PUBLIC_FIELDS  # no budget, goal, owner or valid-user rule


def test_list_filters_by_kind_and_paginates(client, make_campaign):
    for _ in range(3):
        make_campaign(status=S.LIVE, kind=Campaign.Kind.GROUP_BUY)
    make_campaign(status=S.LIVE, kind=Campaign.Kind.PRICE_CUT)
    body = client.get("/api/v1/campaigns/", {"kind": "group_buy", "page_size": 2}).json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert {r["kind"] for r in body["results"]} == {"group_buy"}
    second = client.get(body["next"]).json()
    assert len(second["results"]) == 1


def test_list_orders_soonest_ending_first(client, make_campaign):
    now = timezone.now()
    late = make_campaign(status=S.LIVE, ends_at=now + timedelta(days=20))
    soon = make_campaign(status=S.LIVE, ends_at=now + timedelta(days=2))
    slugs = [r["slug"] for r in client.get("/api/v1/campaigns/").json()["results"]]
    assert slugs == [soon.slug, late.slug]


def test_unknown_kind_is_a_400_with_the_field(client, db):
    body = assert_error(client.get("/api/v1/campaigns/", {"kind": "pyramid"}), 400, "invalid")
    assert "kind" in body["fields"]


def test_page_out_of_range_is_a_404_with_the_error_shape(client, db):
    assert_error(client.get("/api/v1/campaigns/", {"page": 99}), 404, "not_found")


@pytest.mark.parametrize("status", [S.SCHEDULED, S.LIVE, S.PAUSED, S.ENDED])
def test_detail_of_a_public_campaign_has_its_rules(client, make_campaign, status):
    campaign = make_campaign(status=status, rules_text="Invite 3 friends who finish their resume.")
    body = client.get(f"/api/v1/campaigns/{campaign.slug}/").json()
    assert body["rules_text"] == "Invite 3 friends who finish their resume."
    assert body["status"] == status
    assert set(body) == PUBLIC_FIELDS | {"rules_text", "reward_rules_text"}


@pytest.mark.parametrize("status", [S.DRAFT, S.ARCHIVED])
def test_detail_of_a_draft_or_archived_campaign_is_404(client, make_campaign, status):
    campaign = make_campaign(status=status)
    assert_error(client.get(f"/api/v1/campaigns/{campaign.slug}/"), 404, "not_found")


def test_unknown_campaign_and_unknown_route_are_json_404s(client, db, settings):
    assert_error(client.get("/api/v1/campaigns/nope/"), 404, "not_found")
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "not_found")
    settings.DEBUG = True  # as under `make run`: still JSON, not Django's debug page
    assert_error(client.get("/api/v2/whatever"), 404, "not_found")


def test_writes_to_read_only_routes_are_405(client, make_campaign):
    campaign = make_campaign(status=S.LIVE)
    assert_error(
        client.post("/api/v1/campaigns/", {}, content_type="application/json"), 405, "method_not_allowed"
    )
    assert_error(client.delete(f"/api/v1/campaigns/{campaign.slug}/"), 405, "method_not_allowed")
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_schema_and_docs_are_served_without_a_cdn(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/campaigns/{slug}/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower() and "jsdelivr" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs
