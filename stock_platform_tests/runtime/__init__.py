"""Tests for stock_platform.runtime."""
