"""Staff API tokens in the admin (issue, see, revoke), and a deleted campaign's derived rows."""

import hashlib
import logging
import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.admin import REFUSED
from analytics.models import ApiToken
from analytics.services.fold import ADVISORY_NS, DERIVED_TABLES
from analytics.services.tokens import api_token_issue
from campaigns.models import Campaign, Channel
from referrals.models import Reward, RewardRule

from .conftest import DERIVED, snapshot

CHANGELIST = reverse("admin:analytics_apitoken_changelist")
ADD = reverse("admin:analytics_apitoken_add")


def change_url(token) -> str:
    return reverse("admin:analytics_apitoken_change", args=[token.pk])


def delete_url(token) -> str:
    return reverse("admin:analytics_apitoken_delete", args=[token.pk])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def shown_key(response) -> str:
    match = re.search(r'id="api-token-key"[^>]*value="([^"]+)"', response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def api_status(key: str, campaign) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get(f"/api/v1/analytics/campaigns/{campaign.pk}/funnel/").status_code


def issue(client, name: str = "Metabase"):
    """Issue through the admin's add form; returns the response (the page with the key)."""
    return client.post(ADD, {"name": name})


@pytest.fixture
def campaign(make_campaign):
    return make_campaign(status="live")


@pytest.fixture
def reviewer(db) -> User:
    """Rita: staff, a fraud reviewer, without the analytics permission."""
    user = User.objects.create_user("rita", password="pw-rita-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Fraud reviewers"))
    return user


# --- issuing ---------------------------------------------------------------------------------
def test_issuing_shows_the_key_once_and_stores_only_its_hash(client, analyst, caplog):
    # given
    client.force_login(analyst)
    assert client.get(ADD).status_code == 200
    caplog.set_level(logging.DEBUG)
    # when
    response = issue(client)
    # then: the page shows the key, and the token is the analyst's with the key's hash
    assert response.status_code == 200
    key = shown_key(response)
    token = ApiToken.objects.get()
    assert (token.user, token.name) == (analyst, "Metabase")
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() != key
    # and the key is nowhere else: not logged, not in the admin's history, the session or a
    # message cookie, and no later page shows it
    assert key not in caplog.text
    entry = LogEntry.objects.get(object_id=str(token.pk))
    assert key not in entry.object_repr + entry.change_message
    assert all(key not in str(value) for value in client.session.values())
    assert all(key not in morsel.value for morsel in client.cookies.values())
    for url in (CHANGELIST, change_url(token), delete_url(token)):
        page = client.get(url)
        assert page.status_code == 200 and "Metabase" in page.content.decode()
        assert key not in page.content.decode()


def test_issued_key_reads_the_analytics_api_and_its_use_shows_in_the_list(client, analyst, campaign):
    # given
    client.force_login(analyst)
    key = shown_key(issue(client, "Superset"))
    assert ApiToken.objects.get().last_used_at is None
    # when
    status = api_status(key, campaign)
    # then
    assert status == 200
    assert ApiToken.objects.get().last_used_at is not None
    assert api_status(key + "x", campaign) == 401


def test_staff_without_the_permission_are_refused_and_nothing_is_issued(client, reviewer):
    # given
    client.force_login(reviewer)
    # when: the add page, and a posted form
    page = client.get(ADD, follow=True)
    posted = client.post(ADD, {"name": "sneaky"}, follow=True)
    # then: a readable refusal on the token list, and no token
    for response in (page, posted):
        assert response.redirect_chain == [(CHANGELIST, 302)]
        assert texts(response) == [REFUSED]
    assert ApiToken.objects.count() == 0
    # and the admin index does not offer tokens to them
    assert CHANGELIST not in client.get(reverse("admin:index")).content.decode()


def test_issuing_is_offered_to_holders_of_the_permission(client, ops):
    client.force_login(ops)
    assert CHANGELIST in client.get(reverse("admin:index")).content.decode()
    assert ADD in client.get(CHANGELIST).content.decode()
    shown_key(issue(client))
    assert ApiToken.objects.get().user == ops


# --- seeing and revoking ---------------------------------------------------------------------
def test_staff_cannot_see_or_revoke_anothers_token(client, analyst, ops, campaign):
    # given: Ann's token; Olga (also allowed to issue) looks at the admin
    token, key = api_token_issue(user=analyst, name="Ann's Metabase")
    own, _ = api_token_issue(user=ops, name="Olga's sheet")
    client.force_login(ops)
    # when / then: the list shows only Olga's own token
    listed = client.get(CHANGELIST).content.decode()
    assert "Olga&#x27;s sheet" in listed and "Ann&#x27;s Metabase" not in listed
    # and Ann's token's pages are as if it did not exist
    for url in (change_url(token), delete_url(token)):
        response = client.get(url, follow=True)
        assert response.redirect_chain[-1] == (reverse("admin:index"), 302)
        assert "doesn’t exist" in texts(response)[0]
    # and neither the delete view nor the revoke action removes it
    client.post(delete_url(token), {"post": "yes"})
    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"})
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert ApiToken.objects.filter(pk=own.pk).exists()
    assert api_status(key, campaign) == 200


def test_owner_revokes_after_confirming_and_the_key_stops_working(client, analyst, campaign):
    # given
    client.force_login(analyst)
    key = shown_key(issue(client))
    token = ApiToken.objects.get()
    assert api_status(key, campaign) == 200
    # when: the delete view asks first
    confirm = client.get(delete_url(token))
    assert confirm.status_code == 200 and "Revoke this token?" in confirm.content.decode()
    assert ApiToken.objects.filter(pk=token.pk).exists()
    response = client.post(delete_url(token), {"post": "yes"}, follow=True)
    # then
    assert texts(response) == ["Revoked “Metabase (ann)”: its key stops working at once."]
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert api_status(key, campaign) == 401


def test_revoke_action_confirms_then_revokes(client, analyst, campaign):
    # given
    client.force_login(analyst)
    key = shown_key(issue(client))
    token = ApiToken.objects.get()
    assert "Revoke selected tokens" in client.get(CHANGELIST).content.decode()
    selected = {"action": "delete_selected", "_selected_action": [token.pk]}
    # when: the action's first step is a confirmation page, which changes nothing
    confirm = client.post(CHANGELIST, selected)
    assert confirm.status_code == 200 and "Are you sure" in confirm.content.decode()
    assert api_status(key, campaign) == 200
    client.post(CHANGELIST, {**selected, "post": "yes"})
    # then
    assert not ApiToken.objects.exists()
    assert api_status(key, campaign) == 401


def test_superuser_sees_every_token_and_revokes_anothers(client, analyst, ops, campaign):
    # given
    token, key = api_token_issue(user=analyst, name="Ann's Metabase")
    api_token_issue(user=ops, name="Olga's sheet")
    boss = User.objects.create_superuser("boss", password="pw-boss-123")
    client.force_login(boss)
    # when
    listed = client.get(CHANGELIST).content.decode()
    client.post(delete_url(token), {"post": "yes"})
    # then
    assert "Ann&#x27;s Metabase" in listed and "Olga&#x27;s sheet" in listed
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert api_status(key, campaign) == 401


def test_a_token_is_not_editable(client, analyst):
    token, _ = api_token_issue(user=analyst, name="Metabase")
    client.force_login(analyst)
    client.post(change_url(token), {"name": "renamed"})
    assert ApiToken.objects.get(pk=token.pk).name == "Metabase"


def test_changelist_query_count_does_not_grow_with_tokens(client, analyst, django_assert_num_queries):
    # given two tokens – measure – then eight more
    client.force_login(analyst)
    for n in range(2):
        api_token_issue(user=analyst, name=f"tool {n}")
    client.get(CHANGELIST)  # warm the session and content-type caches
    with django_assert_num_queries(PINNED_QUERIES) as first:
        assert client.get(CHANGELIST).status_code == 200
    for n in range(8):
        api_token_issue(user=analyst, name=f"more {n}")
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(CHANGELIST).status_code == 200


PINNED_QUERIES = 6  # a change means the list started to query per row (or stopped needing to)


# --- a deleted campaign's derived rows -------------------------------------------------------
def tell(s) -> None:
    """A campaign with a row in every derived table: joins through a channel's links, shares,
    visits on later days, an order, and a paid reward."""
    Channel.objects.create(campaign=s.campaign, code="moments", name="Moments", spend=Decimal("10.00"))
    t0 = timezone.now() - timedelta(days=3)
    a, b, c = (s.person() for _ in range(3))
    s.join(a, at=t0)
    s.share(a, at=t0 + timedelta(minutes=1), times=2)
    link = s.link(a, "moments")
    s.open(link, b, at=t0 + timedelta(minutes=9))
    referral = s.join(b, at=t0 + timedelta(minutes=10), link=link)
    s.join(c, at=t0 + timedelta(minutes=30), via=b)
    s.event(b, "visit", at=t0 + timedelta(days=1, hours=1))
    order = {"order_id": "o1", "amount": "59.00"}
    s.event(b, "order_paid", at=t0 + timedelta(days=1, hours=2), properties=order)
    rule = RewardRule.objects.create(campaign=s.campaign, name="¥5 a friend", amount=Decimal("5.00"))
    Reward.objects.create(
        rule=rule,
        campaign=s.campaign,
        beneficiary_id=referral.inviter_id,
        kind="cash",
        source=f"referral:{referral.pk}:invitee_valid",
        amount=Decimal("5.00"),
        status="paid",
    )


def test_deleting_a_campaign_removes_its_derived_rows_and_keeps_anothers(story, fold, client):
    # given: two campaigns with the same story, folded; every derived table holds rows of each
    assert set(DERIVED) == set(DERIVED_TABLES)
    gone, kept = story(), story()
    for s in (gone, kept):
        tell(s)
        fold(s.campaign)
    before = snapshot(gone.campaign.pk)
    assert all(before.values()), {table for table, rows in before.items() if not rows}
    kept_before = snapshot(kept.campaign.pk)
    # Rewards are protected (a campaign that paid out is never deleted); the ledger is emptied
    # first, as an operator would have to. Its reward_day rows stay until the deletion.
    Reward.objects.filter(campaign=gone.campaign).delete()
    boss = User.objects.create_superuser("boss", password="pw-boss-123")
    client.force_login(boss)
    # when: deleted through the campaign admin
    response = client.post(
        reverse("admin:campaigns_campaign_delete", args=[gone.campaign.pk]), {"post": "yes"}
    )
    # then
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=gone.campaign.pk).exists()
    assert snapshot(gone.campaign.pk) == {table: [] for table in before}
    assert snapshot(kept.campaign.pk) == kept_before


def test_a_rolled_back_campaign_deletion_keeps_its_derived_rows(story, fold):
    # given: a folded campaign, its ledger emptied
    s = story()
    tell(s)
    fold(s.campaign)
    Reward.objects.filter(campaign=s.campaign).delete()
    before = snapshot(s.campaign.pk)
    # when: the transaction that deletes it fails afterwards
    with pytest.raises(RuntimeError), transaction.atomic():
        Campaign.objects.get(pk=s.campaign.pk).delete()
        raise RuntimeError("something later in the same transaction")
    # then: the rows were deleted in that transaction, and came back with it
    assert Campaign.objects.filter(pk=s.campaign.pk).exists()
    assert snapshot(s.campaign.pk) == before


def test_deletion_waits_for_a_running_fold_and_removes_what_it_wrote(story, fold):
    # given: a fold of the campaign is running (it holds the campaign's writer lock and has
    # written a rollup row, not yet committed)
    s = story()
    tell(s)
    fold(s.campaign)
    Reward.objects.filter(campaign=s.campaign).delete()
    pk = s.campaign.pk
    holding, release = threading.Event(), threading.Event()

    def running_fold():
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NS, pk])
                cur.execute(
                    "INSERT INTO analytics_minute (campaign_id, minute, channel_id, name, count)"
                    " VALUES (%s, now(), 0, 'late', 1)",
                    [pk],
                )
                holding.set()
                release.wait(20)
        finally:
            connection.close()

    def delete():
        try:
            Campaign.objects.get(pk=pk).delete()
        finally:
            connection.close()

    writer = threading.Thread(target=running_fold)
    writer.start()
    assert holding.wait(20)
    # when: the campaign is deleted meanwhile
    deleter = threading.Thread(target=delete)
    deleter.start()
    deleter.join(1)
    waited = deleter.is_alive()
    release.set()
    writer.join(20)
    deleter.join(20)
    # then: the deletion waited for the fold, and removed what the fold had written too
    assert waited
    assert not Campaign.objects.filter(pk=pk).exists()
    assert not any(snapshot(pk).values())
