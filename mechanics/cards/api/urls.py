"""Greeting cards and image share: the mini program's routes."""

urlpatterns: list = []
