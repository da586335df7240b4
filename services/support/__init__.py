"""Support console: payload log, failures, mappings, replay jobs and retention (one aiohttp service)."""
