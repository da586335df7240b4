"""Prometheus metrics (one shared set of names) and structured logging."""
