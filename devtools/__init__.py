"""Developer tooling: the embedded PostgreSQL, migrations, `make run`. Never deployed."""
