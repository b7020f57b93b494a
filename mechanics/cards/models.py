"""Greeting cards and image share: models."""
