"""xplane.fn."""
