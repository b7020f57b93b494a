"""Price cut: models."""
