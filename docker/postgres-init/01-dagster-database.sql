-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d):
-- Dagster keeps its runs, events and schedules in a database of its own, owned by POSTGRES_USER.
CREATE DATABASE dagster;
