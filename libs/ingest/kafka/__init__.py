"""Kafka: the shared stage runtime, results, failure records, admin."""
