"""Suite-wide pytest configuration. Registry/servers fixtures live in tests/support/."""
