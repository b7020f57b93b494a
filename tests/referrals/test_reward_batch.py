"""The batched grant path (server-event batches): the same rewards, caps and budgets as one by
one, exact under concurrency. Real PostgreSQL, real threads."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from referrals.models import Participant, Referral, Reward, RewardCap, RewardRule
from referrals.services import attribution, reward_batch, reward_triggers
from tests.conftest import share_link_for

R = RewardRule


def world(campaign, sharers: int, invitees: int) -> list[int]:
    """`invitees` valid invitees spread over `sharers` sharers; their referral ids."""
    people = Participant.objects.bulk_create(
        Participant(app_id="wx", openid=f"o-{campaign.pk}-{i}") for i in range(sharers + invitees)
    )
    codes = []
    for s in people[:sharers]:
        attribution.campaign_join(campaign=campaign, participant=s)
        codes.append(share_link_for(campaign, s).code)
    for i, p in enumerate(people[sharers:]):
        attribution.campaign_join(campaign=campaign, participant=p, code=codes[i % sharers])
    ids = list(Referral.objects.filter(campaign=campaign, inviter__isnull=False).values_list("pk", flat=True))
    Referral.objects.filter(pk__in=ids).update(status="valid", valid_at=campaign.starts_at)
    return sorted(ids)


def rules(campaign, **cash):
    RewardRule.objects.create(
        campaign=campaign,
        name="¥1",
        amount=Decimal("1.00"),
        hold_hours=72,
        **({"cap_per_participant": 50} | cash),
    )
    RewardRule.objects.create(
        campaign=campaign, name="welcome", beneficiary="invitee", kind="points", points=10
    )
    RewardRule.objects.create(
        campaign=campaign, name="3 friends", trigger="milestone", milestone=3, amount=Decimal("3.00")
    )


def ledger(campaign):
    campaign.refresh_from_db()
    rows = sorted(
        Reward.objects.filter(campaign=campaign).values_list(
            "rule__name", "beneficiary__openid", "source", "amount", "status", "points"
        )
    )
    rows = [(n, o.split("-", 2)[2], s.split(":")[0], a, st, p) for n, o, s, a, st, p in rows]
    caps = sorted(
        (k.split(":", 1)[1], u)
        for k, u in RewardCap.objects.filter(key__startswith="r").values_list("key", "used")
    )
    return rows, caps, campaign.budget_reserved


@pytest.mark.django_db
def test_a_batch_grants_exactly_what_one_by_one_grants(make_campaign):
    one = make_campaign(slug="one", status="live", valid_event_name="first_order")
    many = make_campaign(slug="many", status="live", valid_event_name="first_order")
    for campaign in (one, many):
        rules(campaign)
    ids_one, ids_many = world(one, 3, 12), world(many, 3, 12)
    for referral_id in ids_one:
        reward_triggers.rewards_for_referral(referral_id=referral_id, trigger="invitee_valid")
    assert reward_batch.rewards_for_referrals(referral_ids=ids_many, trigger="invitee_valid") == 12 + 12 + 3
    a, b = ledger(one), ledger(many)
    assert a[0] == b[0] and a[2] == b[2] == Decimal("21.00")  # 12 × ¥1 + 3 milestones × ¥3
    assert reward_batch.rewards_for_referrals(referral_ids=ids_many, trigger="invitee_valid") == 0  # again
    assert ledger(many) == b
    assert (
        Reward.objects.get(
            campaign=many, rule__name="¥1", source=f"referral:{ids_many[0]}:invitee_valid"
        ).transitions.count()
        == 1
    )


@pytest.mark.django_db
def test_a_batch_that_would_pass_a_cap_grants_exactly_up_to_it(make_campaign):
    campaign = make_campaign(status="live", valid_event_name="first_order")
    rules(campaign, cap_per_participant=3)
    ids = world(campaign, 1, 10)  # ten friends of one sharer, cap 3
    reward_batch.rewards_for_referrals(referral_ids=ids, trigger="invitee_valid")
    assert Reward.objects.filter(rule__name="¥1").count() == 3
    assert Reward.objects.filter(rule__name="welcome").count() == 10  # points: no cap
    assert RewardCap.objects.get(key__endswith=f":p{Referral.objects.get(pk=ids[0]).inviter_id}").used == 3


def lopsided(campaign) -> list[int]:
    """Sharer 0 has ten valid friends, sharers 1–8 two each; the referral ids, in join order."""
    people = Participant.objects.bulk_create(
        Participant(app_id="wx", openid=f"o-{campaign.pk}-{i}") for i in range(9 + 10 + 16)
    )
    codes = []
    for s in people[:9]:
        attribution.campaign_join(campaign=campaign, participant=s)
        codes.append(share_link_for(campaign, s).code)
    friends = [0] * 10 + [1 + i // 2 for i in range(16)]
    for p, sharer in zip(people[9:], friends, strict=True):
        attribution.campaign_join(campaign=campaign, participant=p, code=codes[sharer])
    ids = list(Referral.objects.filter(campaign=campaign, inviter__isnull=False).values_list("pk", flat=True))
    Referral.objects.filter(pk__in=ids).update(status="valid", valid_at=campaign.starts_at)
    return sorted(ids)


@pytest.mark.django_db
def test_a_capped_sharer_sends_only_the_rewards_for_their_friends_one_by_one(make_campaign):
    # given: the same lopsided campaign twice; the ¥1 rule is capped at 3 a sharer
    one = make_campaign(slug="one", status="live", valid_event_name="first_order")
    many = make_campaign(slug="many", status="live", valid_event_name="first_order")
    for campaign in (one, many):
        rules(campaign, cap_per_participant=3)
    ids_one, ids_many = lopsided(one), lopsided(many)
    with CaptureQueriesContext(connection) as by_one:
        for referral_id in ids_one:
            reward_triggers.rewards_for_referral(referral_id=referral_id, trigger="invitee_valid")
    # when: all 26 in one batch, which sharer 0's ten friends push over the cap
    with CaptureQueriesContext(connection) as batched:
        granted = reward_batch.rewards_for_referrals(referral_ids=ids_many, trigger="invitee_valid")
    # then: the same ledger as one by one (sharer 0 gets 3 × ¥1 and the ¥3 tier, the others
    # 2 × ¥1, every friend 10 points), and only sharer 0's ten went down the slow path
    assert granted == (3 + 16) + 26 + 1
    a, b = ledger(one), ledger(many)
    assert a == b and b[2] == Decimal("22.00")
    assert len(batched) < len(by_one) / 2, (len(batched), len(by_one))


@pytest.mark.django_db
def test_once_the_budget_is_spent_a_batch_refuses_at_once_without_the_slow_path(make_campaign):
    # given: ¥5 of budget, ¥1 a valid friend; the first five friends take it all
    campaign = make_campaign(status="live", valid_event_name="first_order", budget_total=Decimal("5.00"))
    RewardRule.objects.create(campaign=campaign, name="¥1", amount=Decimal("1.00"))
    ids = world(campaign, 2, 25)
    assert reward_batch.rewards_for_referrals(referral_ids=ids[:5], trigger="invitee_valid") == 5
    # when: twenty more
    with CaptureQueriesContext(connection) as queries:
        granted = reward_batch.rewards_for_referrals(referral_ids=ids[5:], trigger="invitee_valid")
    # then: nothing granted, nothing overspent, and no reward_grant round trips per friend
    campaign.refresh_from_db()
    assert granted == 0 and campaign.budget_reserved == Decimal("5.00")
    assert Reward.objects.filter(campaign=campaign).count() == 5
    assert len(queries) < 20, len(queries)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_never_overspend_the_budget(make_campaign):
    campaign = make_campaign(status="live", valid_event_name="first_order", budget_total=Decimal("25.00"))
    RewardRule.objects.create(campaign=campaign, name="¥1", amount=Decimal("1.00"))
    ids = world(campaign, 8, 240)
    chunks = [ids[i::8] for i in range(8)]
    barrier = threading.Barrier(len(chunks))
    errors = []

    def grant(chunk):
        try:
            barrier.wait()
            reward_batch.rewards_for_referrals(referral_ids=chunk, trigger="invitee_valid")
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=grant, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    campaign.refresh_from_db()
    granted = sum(Reward.objects.filter(campaign=campaign).values_list("amount", flat=True), Decimal(0))
    assert granted == campaign.budget_reserved <= campaign.budget_total  # overspend ¥0.00
    assert campaign.budget_total - granted < Decimal("1.00")  # within one reward of the budget


@pytest.mark.django_db
def test_a_server_event_batch_grants_its_valid_invitees_in_one_task(
    client, live_campaign, sharer, invitee, second_invitee, eager_tasks, django_capture_on_commit_callbacks
):
    import time

    import orjson
    from django.utils import timezone

    from referrals.api.auth import sign
    from referrals.models import ApiKey

    RewardRule.objects.create(campaign=live_campaign, name="¥2", amount=Decimal("2.00"))
    code = share_link_for(live_campaign, sharer).code
    for person in (invitee, second_invitee):
        attribution.campaign_join(campaign=live_campaign, participant=person, code=code)
    raw, prefix, salt, digest = ApiKey.generate()
    ApiKey.objects.create(name="Shop", prefix=prefix, salt=salt, key_hash=digest)
    events = [
        {
            "id": f"v-{p.pk}",
            "type": "resume_completed",
            "openid": p.openid,
            "campaign": live_campaign.slug,
            "time": timezone.now().isoformat(),
            "properties": {"completeness": 0.9},
        }
        for p in (invitee, second_invitee)
    ]
    body = orjson.dumps({"events": events})
    ts = int(time.time())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        answer = client.post(
            "/api/v1/server/events/",
            body,
            content_type="application/json",
            HTTP_X_FISSION_KEY=raw.rsplit("_", 1)[0],
            HTTP_X_FISSION_TIMESTAMP=str(ts),
            HTTP_X_FISSION_SIGNATURE=sign(raw, ts, body),
        )
    assert [r.get("made_valid") for r in answer.json()["results"]] == [True, True]
    assert len(callbacks) == 1  # one grant task for the batch, not one per invitee
    assert sorted(Reward.objects.values_list("beneficiary_id", "amount")) == [
        (sharer.pk, Decimal("2.00")),
        (sharer.pk, Decimal("2.00")),
    ]
