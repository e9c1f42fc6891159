"""Starting, checking and stopping the platform's local services (PostgreSQL, Redis, Kafka)."""
