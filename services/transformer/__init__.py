"""Transformer stage: integration.mapped → integration.transformed (canonical commands)."""
