"""Tests of the container deployment: docker-compose.yml, its Dockerfiles and .env.example."""
