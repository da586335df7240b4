"""Mapping resolver stage: integration.deduped → integration.mapped."""
