"""herdsman.worker."""
