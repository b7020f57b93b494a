"""The staff analytics API: who may read it, and that it returns the selectors' numbers."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from analytics.services.tokens import api_token_issue

ROUTES = [
    "goal-pacing/",
    "last-hour/",
    "funnel/",
    "funnel/dropoffs/?step=join",
    "retention/?kind=cumulative&basis=rolling&days=7",
    "virality/",
    "sharers/",
    "channels/",
    "money/",
]


@pytest.fixture
def campaign(make_campaign):
    return make_campaign(status="live")


def url(campaign, route: str) -> str:
    return f"/api/v1/analytics/campaigns/{campaign.pk}/{route}"


@pytest.mark.parametrize("route", ROUTES)
def test_analyst_reads_every_route_by_session(client, analyst, campaign, route):
    client.force_login(analyst)
    response = client.get(url(campaign, route))
    assert response.status_code == 200, response.content
    assert "as_of" in response.json() or "results" in response.json()


def test_campaign_manager_reads_too(client, ops, campaign):
    client.force_login(ops)
    assert client.get(url(campaign, "funnel/")).status_code == 200


@pytest.mark.parametrize("route", ["goal-pacing/", "money/"])
def test_anonymous_is_refused(client, campaign, route):
    response = APIClient().get(url(campaign, route))
    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("not_authenticated", "authentication_failed")


def test_staff_without_the_permission_is_refused(client, campaign, db):
    reviewer = User.objects.create_user("rita", password="pw-rita-123", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Fraud reviewers"))
    client.force_login(reviewer)
    response = client.get(url(campaign, "funnel/"))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_token_of_an_analyst_reads(analyst, campaign):
    _, key = api_token_issue(user=analyst, name="Metabase")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api.get(url(campaign, "channels/"))
    assert response.status_code == 200
    assert response.json()["total"]["cost"] == "0.00"  # money as a decimal string


def test_unknown_token_and_inactive_user_are_refused(analyst, campaign):
    _, key = api_token_issue(user=analyst, name="Metabase")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    assert api.get(url(campaign, "funnel/")).status_code == 401
    analyst.is_active = False
    analyst.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(url(campaign, "funnel/")).status_code == 401


def test_token_of_a_user_without_the_permission_reads_nothing(campaign, db):
    plain = User.objects.create_user("pat", password="pw-pat-123", is_staff=True)
    _, key = api_token_issue(user=plain, name="script")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(url(campaign, "funnel/")).status_code == 403


def test_participant_token_is_not_a_staff_token(campaign, api_as, make_participant):
    response = api_as(make_participant()).get(url(campaign, "funnel/"))
    assert response.status_code in (401, 403)


def test_unknown_campaign_and_bad_parameters(client, analyst, campaign):
    client.force_login(analyst)
    missing = client.get(f"/api/v1/analytics/campaigns/{campaign.pk + 999}/funnel/")
    assert missing.status_code == 404 and missing.json()["code"] == "campaign_not_found"
    bad = client.get(url(campaign, "retention/?kind=weekly"))
    assert bad.status_code == 400 and "kind" in bad.json()["fields"]
    assert client.get(url(campaign, "funnel/dropoffs/?step=share")).status_code == 400


def test_progress_of_several_campaigns(client, analyst, campaign, make_campaign):
    other = make_campaign()
    client.force_login(analyst)
    response = client.get(f"/api/v1/analytics/progress/?ids={campaign.pk},{other.pk}")
    assert response.status_code == 200
    assert response.json() == {str(campaign.pk): 0.0, str(other.pk): 0.0}


def test_the_schema_documents_the_routes(client, analyst):
    client.force_login(analyst)
    paths = [
        line for line in client.get("/api/schema/").content.decode().splitlines() if "/analytics/" in line
    ]
    assert any("goal-pacing" in line for line in paths) and any("retention" in line for line in paths)
