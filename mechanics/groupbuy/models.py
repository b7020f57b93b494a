"""Group buying: models."""
