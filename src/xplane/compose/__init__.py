"""xplane.compose."""
