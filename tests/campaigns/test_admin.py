from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Channel, PosterTemplate

S = Campaign.Status
CHANGELISTS = ["campaign", "channel", "postertemplate"]


def changelist(model: str) -> str:
    return reverse(f"admin:campaigns_{model}_changelist")


def act(client, action: str, campaigns, **extra):
    return client.post(
        changelist("campaign"),
        {"action": action, "_selected_action": [c.pk for c in campaigns], **extra},
        follow=True,
    )


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def populated(make_campaign, make_template, with_channels):
    def populate(n: int) -> None:
        for _ in range(n):
            campaign = make_campaign()
            with_channels(campaign)
            make_template(campaign)

    return populate


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelist_query_count_does_not_grow_with_rows(
    admin_client, populated, django_assert_num_queries, model
):
    # given three campaigns (with channels and templates) – measure – then ten more
    populated(3)
    admin_client.get(changelist(model))  # warm the session and content-type caches
    with django_assert_num_queries(PINNED_QUERIES[model]):
        assert admin_client.get(changelist(model)).status_code == 200
    populated(10)
    with django_assert_num_queries(PINNED_QUERIES[model]):
        response = admin_client.get(changelist(model))
    assert response.status_code == 200


# Pinned: a change here means the changelist started to query per row (or stopped needing to).
# The campaign list reads the analytics counters for its progress column in one query.
PINNED_QUERIES = {"campaign": 8, "channel": 5, "postertemplate": 5}


@pytest.mark.parametrize("model", CHANGELISTS)
def test_add_page_loads(admin_client, model):
    assert admin_client.get(reverse(f"admin:campaigns_{model}_add")).status_code == 200


def test_change_page_shows_channels_templates_history_and_a_preview(
    admin_client, make_campaign, make_template, with_channels
):
    campaign = make_campaign()
    with_channels(campaign)
    template = make_template(campaign)
    response = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Moments" in html and "Status history" in html
    assert reverse("admin:campaigns_postertemplate_preview", args=[template.pk]) in html


def test_template_preview_renders_a_png_with_the_qr_code(admin_client, make_campaign, make_template):
    import io

    from PIL import Image

    template = make_template(make_campaign())
    response = admin_client.get(reverse("admin:campaigns_postertemplate_preview", args=[template.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (400, 700)
    # the QR code's quiet zone is white and its modules black, where the template puts it
    qr = image.convert("L").crop(
        (template.qr_x, template.qr_y, template.qr_x + template.qr_size, template.qr_y + template.qr_size)
    )
    assert qr.getextrema() == (0, 255)
    # the background elsewhere is untouched
    assert image.getpixel((390, 690)) == (0xB7, 0x1C, 0x1C)


def test_campaign_list_shows_progress_column_and_filters(admin_client, make_campaign):
    live = make_campaign(name="Spring cards", status=S.LIVE, kind=Campaign.Kind.GREETING_CARD)
    make_campaign(name="Old one", status=S.ENDED)
    response = admin_client.get(changelist("campaign"), {"status__exact": "live"})
    html = response.content.decode()
    assert "Progress" in html and "0.0%" in html
    assert live.name in html and "Old one" not in html
    response = admin_client.get(changelist("campaign"), {"q": "spring"})
    assert "Spring cards" in response.content.decode()
    response = admin_client.get(changelist("campaign"), {"kind__exact": "greeting_card"})
    assert "Old one" not in response.content.decode()


def test_launch_action_reports_successes_and_refusals(admin_client, admin_user, make_campaign):
    now = timezone.now()
    ready = make_campaign(name="Ready")
    future = make_campaign(name="Future", starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=3))
    too_late = make_campaign(
        name="Too late", starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=1)
    )
    response = act(admin_client, "launch", [ready, future, too_late])
    messages = texts(response)
    assert any(
        "Launched: 2 campaign(s)" in m and "“Ready” (live)" in m and "“Future” (scheduled)" in m
        for m in messages
    ), messages
    assert any("1 refused" in m and "Too late" in m for m in messages), messages
    assert {c.name: c.status for c in Campaign.objects.all()} == {
        "Ready": S.LIVE,
        "Future": S.SCHEDULED,
        "Too late": S.DRAFT,
    }
    assert LogEntry.objects.filter(user=admin_user, object_id=str(ready.pk)).exists()


def test_pause_end_archive_actions(admin_client, make_campaign):
    campaign = make_campaign(status=S.LIVE)
    act(admin_client, "pause", [campaign])
    campaign.refresh_from_db()
    assert campaign.status == S.PAUSED
    act(admin_client, "end", [campaign])
    campaign.refresh_from_db()
    assert campaign.status == S.ENDED
    messages = texts(act(admin_client, "pause", [campaign]))
    assert any("cannot become paused" in m for m in messages), messages
    act(admin_client, "archive", [campaign])
    campaign.refresh_from_db()
    assert campaign.status == S.ARCHIVED


def test_clone_action_makes_a_draft_copy(admin_client, make_campaign, with_channels):
    campaign = make_campaign(status=S.ENDED)
    with_channels(campaign)
    messages = texts(act(admin_client, "clone", [campaign]))
    copy = Campaign.objects.get(cloned_from=campaign)
    assert copy.status == S.DRAFT and copy.channels.count() == 2
    assert any("Cloned: 1 campaign(s)" in m for m in messages), messages


def test_status_cannot_be_edited_in_the_form(admin_client, make_campaign):
    # given a draft; ops submits the change form with status=live smuggled in
    campaign = make_campaign()
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    data = {
        "name": campaign.name,
        "slug": campaign.slug,
        "kind": campaign.kind,
        "status": "live",
        "starts_at_0": timezone.localtime(campaign.starts_at).strftime("%Y-%m-%d"),
        "starts_at_1": timezone.localtime(campaign.starts_at).strftime("%H:%M:%S"),
        "ends_at_0": timezone.localtime(campaign.ends_at).strftime("%Y-%m-%d"),
        "ends_at_1": timezone.localtime(campaign.ends_at).strftime("%H:%M:%S"),
        "time_zone": "Asia/Shanghai",
        "goal_metric": "valid_users",
        "goal_target": "500",
        "budget_total": "100.00",
        "attribution_window_hours": "72",
        "valid_event_name": "join",
        "valid_comparison": "gte",
        **{
            f"{prefix}-{k}": v
            for prefix in ("channels", "templates", "reward_rules", "transitions")
            for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()
        },
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign.refresh_from_db()
    assert campaign.goal_target == 500  # the edit went through…
    assert campaign.status == S.DRAFT  # …but not the status


def test_template_that_does_not_fit_gets_a_readable_error(admin_client, make_campaign):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import png_bytes

    campaign = make_campaign()
    response = admin_client.post(
        reverse("admin:campaigns_postertemplate_add"),
        {
            "campaign": campaign.pk,
            "name": "Too big QR",
            "background": SimpleUploadedFile("bg.png", png_bytes((300, 300)), content_type="image/png"),
            "avatar_x": 0,
            "avatar_y": 0,
            "avatar_size": 50,
            "nickname_x": 60,
            "nickname_y": 10,
            "nickname_size": 20,
            "nickname_color": "#000000",
            "qr_x": 200,
            "qr_y": 200,
            "qr_size": 200,
        },
    )
    assert response.status_code == 200
    assert "does not fit in the 300×300 background" in response.content.decode()
    assert PosterTemplate.objects.count() == 0


def test_campaign_manager_can_change_and_analyst_only_view(client, ops, analyst, make_campaign):
    campaign = make_campaign()
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    client.force_login(ops)
    assert client.get(changelist("campaign")).status_code == 200
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 200
    act(client, "launch", [campaign])
    campaign.refresh_from_db()
    assert campaign.status == S.LIVE

    client.force_login(analyst)
    assert client.get(changelist("campaign")).status_code == 200
    assert client.get(change).status_code == 200  # read-only view
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 403
    act(client, "pause", [campaign])  # not offered to a viewer: nothing happens
    campaign.refresh_from_db()
    assert campaign.status == S.LIVE
    assert Channel.objects.count() == 0


def test_oversized_background_is_refused_with_its_size(admin_client, make_campaign, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import png_bytes

    settings.FISSION_TEMPLATE_MAX_BYTES = 1000
    campaign = make_campaign()
    response = admin_client.post(
        reverse("admin:campaigns_postertemplate_add"),
        {
            "campaign": campaign.pk,
            "name": "Huge",
            "background": SimpleUploadedFile(
                "bg.png", png_bytes((600, 900)) + b"\0" * 2000, content_type="image/png"
            ),
            "avatar_x": 0,
            "avatar_y": 0,
            "avatar_size": 50,
            "nickname_x": 60,
            "nickname_y": 10,
            "nickname_size": 20,
            "nickname_color": "#000000",
            "qr_x": 10,
            "qr_y": 100,
            "qr_size": 100,
        },
    )
    assert "backgrounds may be at most 0.0 MB" in response.content.decode()
    assert PosterTemplate.objects.count() == 0
