"""Feeds stage: integration.imports → streamed rows → integration.transformed in batches (bulk feed imports)."""
