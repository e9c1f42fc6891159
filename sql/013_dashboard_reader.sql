-- The dashboard reads through its own role, stock_reader, which may SELECT from the platform's tables and nothing
-- else: a flaw in the one public program cannot change or delete data. Tables created later by the role that runs
-- the migrations (partitions, the next migration's tables) are readable too, by default privileges.
--
-- The role itself is created outside the migrations, with its password: by `stock-platform services up` on the
-- local server, by the `postgres-roles` one-shot in docker-compose.yml. Creating a role needs a privilege the
-- migrating role may lack, and a deployment may have no dashboard at all, so where the role does not exist this
-- migration grants nothing and succeeds.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'stock_reader') THEN
        -- PUBLIC usually has USAGE on the schema already; granting it needs the schema owner's right, so only if not.
        IF NOT has_schema_privilege('stock_reader', 'public', 'USAGE') THEN
            GRANT USAGE ON SCHEMA public TO stock_reader;
        END IF;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO stock_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO stock_reader;
    END IF;
END
$$;
