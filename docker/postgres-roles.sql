-- Run by the postgres-roles one-shot of docker-compose.yml on every `docker compose up`, as POSTGRES_USER:
-- the dashboard's read-only role exists, may log in, and has the password from .env (POSTGRES_READER_PASSWORD),
-- which psql reads from its environment (never from its command line). What the role may read is granted by
-- sql/013_dashboard_reader.sql, which the `migrate` one-shot applies after this.
\getenv reader_password POSTGRES_READER_PASSWORD
SELECT 'CREATE ROLE stock_reader LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stock_reader') \gexec
ALTER ROLE stock_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
