"""Tests for stock_platform.dashboard."""
