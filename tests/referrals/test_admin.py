import pytest
from django.urls import reverse

from referrals.services import attribution
from tests.conftest import share_link_for

MODELS = ["participant", "referral", "sharelink", "apikey"]
# Pinned: a change means a changelist started (or stopped) querying per row.
PINNED = {"participant": 4, "referral": 5, "sharelink": 5, "apikey": 5}


@pytest.fixture
def tree(live_campaign, make_participant):
    def grow(n: int) -> None:
        root = make_participant()
        code = share_link_for(live_campaign, root).code
        for _ in range(n):
            attribution.campaign_join(campaign=live_campaign, participant=make_participant(), code=code)

    return grow


@pytest.mark.parametrize("model", MODELS)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, tree, django_assert_num_queries, model):
    url = reverse(f"admin:referrals_{model}_changelist")
    tree(3)
    admin_client.get(url)
    with django_assert_num_queries(PINNED[model]):
        assert admin_client.get(url).status_code == 200
    tree(12)
    with django_assert_num_queries(PINNED[model]):
        assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize("model", ["participant", "apikey"])
def test_add_pages_load(admin_client, model):
    assert admin_client.get(reverse(f"admin:referrals_{model}_add")).status_code == 200


def test_referral_and_share_link_rows_are_never_made_by_hand(admin_client):
    assert admin_client.get(reverse("admin:referrals_referral_add")).status_code == 403
    assert admin_client.get(reverse("admin:referrals_sharelink_add")).status_code == 403


def test_participant_page_never_shows_the_session_key(admin_client, make_participant):
    p = make_participant(session_key="SECRET-SESSION-KEY-123")
    page = admin_client.get(reverse("admin:referrals_participant_change", args=[p.pk])).content.decode()
    assert "SECRET-SESSION-KEY-123" not in page
