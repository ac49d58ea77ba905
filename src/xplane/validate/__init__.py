"""xplane.validate."""
