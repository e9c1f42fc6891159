"""Quotes enter here: Finnhub REST and WebSocket clients, the simulated market, replay, and the Kafka producer."""
