"""herdsman.plugins."""
