"""Daily check-in: models."""
