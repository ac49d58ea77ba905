"""xplane.store."""
