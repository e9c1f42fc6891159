"""Tests for stock_platform.storage."""
