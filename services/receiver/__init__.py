"""Webhook receiver: verify, write the durable raw log, answer, publish to integration.raw."""
