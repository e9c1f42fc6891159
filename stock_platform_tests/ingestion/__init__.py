"""Tests for stock_platform.ingestion."""
