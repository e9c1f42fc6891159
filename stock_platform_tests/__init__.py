"""Tests for stock-platform; the tree mirrors the package."""
