"""The campaign cockpit, inside the admin: one page per campaign, each tile one selector call.

The views stay thin: they check the permission, read the query parameters, call the
selectors of ``analytics.selectors`` and hand the results to ``tiles`` (which shapes them
for tables and charts). The campaign admin routes them (see ``analytics.apps``).
"""

import csv
from collections.abc import Iterator

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from analytics import selectors
from campaigns.models import Campaign
from referrals.services.fraud import fraud_weekly_summary

from . import formatting, tiles

# Who may open the cockpit: staff with the analytics view permission.
COCKPIT_PERMISSION = "analytics.view_cockpit"
REFRESH_SECONDS = 60


def may_view_cockpit(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm(COCKPIT_PERMISSION)


def _campaign_or_403(request, campaign_id: int) -> Campaign:
    if not may_view_cockpit(request.user):
        raise PermissionDenied("The cockpit needs the analytics view permission.")
    return get_object_or_404(Campaign, pk=campaign_id)


def cockpit(request, campaign_id: int):
    campaign = _campaign_or_403(request, campaign_id)
    now = timezone.now()
    options = tiles.RetentionOptions.from_query(request.GET)
    pacing = tiles.pacing(campaign, selectors.goal_pacing(campaign, now=now))
    weekly = fraud_weekly_summary(cases=campaign.fraud_cases.all(), now=now)
    shown = [
        pacing,
        tiles.last_hour(campaign, selectors.last_hour(campaign, now=now)),
        tiles.funnel(campaign, selectors.funnel(campaign)),
        tiles.retention(
            campaign,
            selectors.retention(campaign, kind=options.kind, basis=options.basis, days=options.days),
            options,
        ),
        tiles.virality(campaign, selectors.virality(campaign)),
        tiles.sharers(campaign, selectors.sharers(campaign)),
        tiles.channels(campaign, selectors.channels(campaign)),
        tiles.money(campaign, selectors.reviews_and_money(campaign), weekly),
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Cockpit: {campaign.name}",
        "campaign": campaign,
        "opts": Campaign._meta,
        "schedule": f"{formatting.local(campaign.starts_at, campaign.tz)} → "
        f"{formatting.local(campaign.ends_at, campaign.tz)}",
        # Formatted here: the template's date filter would convert to the admin's zone.
        "now_local": formatting.local(now, campaign.tz, "%Y-%m-%d %H:%M:%S"),
        "as_of": tiles.show_time(pacing["as_of"]) if pacing["as_of"] else "",
        "is_live": campaign.status == Campaign.Status.LIVE,
        "refresh_seconds": REFRESH_SECONDS,
        "pacing": pacing,
        "tiles": shown,
    }
    return TemplateResponse(request, "admin/analytics/cockpit/cockpit.html", context)


def dropoffs_csv(request, campaign_id: int, step: str):
    """The participants who reached `step` of the funnel and not the next one, as CSV
    (UTF-8 with a BOM, so Excel opens it), streamed row by row."""
    campaign = _campaign_or_403(request, campaign_id)
    if step not in tiles.FUNNEL_STEPS:
        raise Http404("No such funnel step.")
    rows = selectors.funnel_dropoffs(campaign, step=step)
    response = StreamingHttpResponse(_csv_lines(tiles.dropoff_rows(campaign, rows)), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="{campaign.slug}-dropoffs-{step}-{timezone.now():%Y%m%d-%H%M}.csv"'
    )
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterator[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"
    for row in rows:
        yield writer.writerow(row)
