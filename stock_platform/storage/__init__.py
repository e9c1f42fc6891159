"""PostgreSQL and Redis access shared by the stream job, the assets and the dashboard."""
