"""herdsman.client.swarm."""
