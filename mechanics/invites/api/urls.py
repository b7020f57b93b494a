"""Invite-N tasks: the mini program's routes."""

urlpatterns: list = []
