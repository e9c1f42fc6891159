"""Tests for stock_platform.orchestration."""
