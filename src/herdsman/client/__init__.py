"""herdsman.client."""
