"""xplane.pkg."""
