from django.urls import path

from .views import CampaignDetailApi, CampaignListApi

urlpatterns = [
    path("campaigns/", CampaignListApi.as_view(), name="campaign-list"),
    path("campaigns/<slug:slug>/", CampaignDetailApi.as_view(), name="campaign-detail"),
]
