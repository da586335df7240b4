"""The durable raw log: exact bytes in S3 segment objects, one metadata row each in PostgreSQL."""
