"""Glue: the cockpit's pages under each campaign in the admin, and real progress on the
campaign list. Called once from ``AnalyticsConfig.ready()``; campaigns never imports
analytics, it offers the hooks (``CAMPAIGN_PAGES``, ``CampaignAdmin.progress_provider``)."""

from collections.abc import Iterable

from campaigns import admin as campaigns_admin


def completion(campaign_ids: Iterable[int]) -> dict[int, float]:
    """The campaign list's progress column: N / goal per campaign (one query for the whole
    page, from the per-campaign counter rows)."""
    from analytics import selectors

    return selectors.progress(list(campaign_ids))


def register() -> None:
    from . import views

    pages = [
        campaigns_admin.CampaignPage(
            "cockpit/", views.cockpit, "cockpit", "Cockpit", permission="analytics.view_cockpit"
        ),
        campaigns_admin.CampaignPage("cockpit/dropoffs/<slug:step>.csv", views.dropoffs_csv, "dropoffs"),
    ]
    known = {page.name for page in campaigns_admin.CAMPAIGN_PAGES}
    campaigns_admin.CAMPAIGN_PAGES.extend(page for page in pages if page.name not in known)
    campaigns_admin.CampaignAdmin.progress_provider = staticmethod(completion)
