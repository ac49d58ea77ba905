"""xplane.xpkg."""
