"""Failure recorder: integration.failures and integration.outcomes → PostgreSQL (the ledger)."""
