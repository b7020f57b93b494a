"""Every /api/v1/ route, one include per app."""

from django.urls import include, path

urlpatterns = [
    path("", include("campaigns.api.urls")),
    path("", include("referrals.api.urls")),
    path("", include("mechanics.groupbuy.api.urls")),
    path("", include("mechanics.pricecut.api.urls")),
    path("", include("mechanics.cards.api.urls")),
    path("", include("mechanics.invites.api.urls")),
    path("", include("mechanics.distribution.api.urls")),
    path("", include("mechanics.checkin.api.urls")),
    path("", include("analytics.api.urls")),
]
