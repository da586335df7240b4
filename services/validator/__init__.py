"""Validator stage: integration.transformed → integration.validated; bad commands are validation failures."""
