"""What reads the database for the CLI, the web GUI and the swarm; nothing here writes."""
