from io import StringIO

from django.core.management import call_command

from campaigns.models import Campaign, CampaignTransition, Channel, PosterTemplate


def counts():
    return tuple(m.objects.count() for m in (Campaign, Channel, PosterTemplate, CampaignTransition))


def test_seed_demo_makes_the_two_campaigns_and_is_idempotent(db, settings, tmp_path, client):
    settings.MEDIA_ROOT = str(tmp_path)
    call_command("seed_demo", stdout=StringIO())
    first = counts()
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first
    spring = Campaign.objects.get(slug="spring-festival-cards")
    cold = Campaign.objects.get(slug="cold-start")
    assert spring.kind == Campaign.Kind.GREETING_CARD and spring.goal_target == 1_000_000
    local_start = spring.starts_at.astimezone(spring.tz)
    assert (local_start.month, local_start.day) == (2, 2)
    assert (spring.ends_at - spring.starts_at).days == 10
    assert spring.status == Campaign.Status.SCHEDULED
    assert cold.status == Campaign.Status.LIVE
    assert cold.valid_user_rule_text() == "resume_completed with completeness ≥ 0.6 within 168 h of joining"
    assert spring.channels.count() == 6 and spring.templates.filter(is_default=True).count() == 1
    # and the mini program sees the live one
    assert [c["slug"] for c in client.get("/api/v1/campaigns/").json()["results"]] == ["cold-start"]


def test_ensure_admin_creates_once_and_prints_the_login(db, monkeypatch, tmp_path):
    from django.contrib.auth.models import User

    monkeypatch.setenv("FISSION_ADMIN_PASSWORD", "a-long-demo-password")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    call_command("ensure_admin", stdout=out)
    assert out.getvalue().count("Admin login: admin / a-long-demo-password") == 2
    user = User.objects.get(username="admin")
    assert user.is_superuser and user.check_password("a-long-demo-password")


def test_demo_reward_rules_pass_the_compliance_check_and_seed_once(db, settings, tmp_path):
    from referrals.models import RewardRule
    from referrals.services.compliance import campaign_findings

    settings.MEDIA_ROOT = str(tmp_path)
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo_rewards", stdout=StringIO())
    call_command("seed_demo_rewards", stdout=StringIO())
    cold = Campaign.objects.get(slug="cold-start")
    assert RewardRule.objects.filter(campaign=cold).count() == 4
    assert campaign_findings(cold) == []
    cold.refresh_from_db()
    assert "¥5.00 cash when a friend you invited counts" in cold.reward_rules_text
