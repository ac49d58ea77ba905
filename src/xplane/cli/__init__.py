"""xplane.cli."""
