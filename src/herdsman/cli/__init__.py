"""herdsman.cli."""
