"""Tests for stock_platform.streaming."""
