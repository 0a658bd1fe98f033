"""herdsman.distributor."""
