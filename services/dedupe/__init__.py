"""Dedupe stage: integration.raw → integration.deduped; repeats become duplicate failures."""
