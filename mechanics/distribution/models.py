"""Distribution: models."""
