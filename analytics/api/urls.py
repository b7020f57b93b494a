from django.urls import path

from . import views

prefix = "analytics/campaigns/<int:campaign_id>/"

urlpatterns = [
    path("analytics/progress/", views.ProgressApi.as_view(), name="analytics-progress"),
    path(prefix + "goal-pacing/", views.GoalPacingApi.as_view(), name="analytics-goal-pacing"),
    path(prefix + "last-hour/", views.LastHourApi.as_view(), name="analytics-last-hour"),
    path(prefix + "funnel/", views.FunnelApi.as_view(), name="analytics-funnel"),
    path(prefix + "funnel/dropoffs/", views.FunnelDropoffsApi.as_view(), name="analytics-funnel-dropoffs"),
    path(prefix + "retention/", views.RetentionApi.as_view(), name="analytics-retention"),
    path(prefix + "virality/", views.ViralityApi.as_view(), name="analytics-virality"),
    path(prefix + "sharers/", views.SharersApi.as_view(), name="analytics-sharers"),
    path(prefix + "channels/", views.ChannelsApi.as_view(), name="analytics-channels"),
    path(prefix + "money/", views.MoneyApi.as_view(), name="analytics-money"),
]
