"""Group buying: the mini program's routes and the business backend's signal outbox."""

from django.urls import path

from . import views

urlpatterns = [
    path("campaigns/<slug:slug>/group-deals/", views.DealListApi.as_view(), name="group-deals"),
    path("group-deals/<int:deal_id>/groups/", views.GroupOpenApi.as_view(), name="group-open"),
    path("groups/<str:code>/", views.GroupDetailApi.as_view(), name="group-detail"),
    path("groups/<str:code>/join", views.GroupJoinApi.as_view(), name="group-join"),
    path("me/groups/", views.MyGroupsApi.as_view(), name="me-groups"),
    path("server/group-signals/", views.SignalListApi.as_view(), name="server-group-signals"),
    path("server/group-signals/ack", views.SignalAckApi.as_view(), name="server-group-signals-ack"),
]
