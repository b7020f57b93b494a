"""Daily check-in: the mini program's routes."""

from django.urls import path

from . import views

urlpatterns = [
    path("checkins/<slug:slug>/", views.CheckinApi.as_view(), name="checkin"),
    path("checkins/<slug:slug>/makeup", views.MakeupApi.as_view(), name="checkin-makeup"),
    path("checkins/<slug:slug>/me", views.MyStreakApi.as_view(), name="checkin-me"),
]
