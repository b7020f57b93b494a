"""Invite-N tasks: the mini program's routes."""

from django.urls import path

from . import views

urlpatterns = [
    path("invite-tasks/<slug:slug>/", views.InviteTaskDetailApi.as_view(), name="invite-task"),
    path("invite-tasks/<slug:slug>/me", views.MyInviteTaskApi.as_view(), name="invite-task-me"),
    path(
        "invite-tasks/<slug:slug>/me/friends", views.MyInviteFriendsApi.as_view(), name="invite-task-friends"
    ),
]
