"""Report exports: models."""
