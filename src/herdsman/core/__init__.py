"""herdsman.core."""
