"""xplane.oci."""
