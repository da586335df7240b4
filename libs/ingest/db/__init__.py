"""PostgreSQL: pool, migrations and the repositories of each table."""
