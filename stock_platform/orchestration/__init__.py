"""Dagster resources, assets, checks, jobs, sensors and schedules that run the platform."""
