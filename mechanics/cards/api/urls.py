"""Greeting cards and image share: the mini program's routes."""

from django.urls import path

from referrals.api import urls as _referral_urls  # noqa: F401 - registers the sharecode converter

from . import views

urlpatterns = [
    path("campaigns/<slug:slug>/card-templates/", views.CardTemplateListApi.as_view(), name="card-templates"),
    path(
        "card-templates/<int:pk>/preview.png",
        views.CardTemplatePreviewApi.as_view(),
        name="card-template-preview",
    ),
    path("campaigns/<slug:slug>/cards/", views.CardCreateApi.as_view(), name="card-create"),
    path("me/cards/", views.MyCardsApi.as_view(), name="me-cards"),
    path("cards/<sharecode:code>/", views.CardDetailApi.as_view(), name="card-detail"),
    path("cards/<sharecode:code>/image.png", views.CardImageApi.as_view(), name="card-image"),
    path("cards/<sharecode:code>/open", views.CardOpenApi.as_view(), name="card-open"),
    path("cards/<sharecode:code>/accept", views.CardAcceptApi.as_view(), name="card-accept"),
]
