"""herdsman.server."""
