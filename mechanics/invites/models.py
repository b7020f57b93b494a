"""Invite-N tasks: models."""
