"""The Spark Structured Streaming job: Kafka in, PostgreSQL and Redis out."""
