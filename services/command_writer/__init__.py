"""Command writer stage: integration.validated → catalog.commands + the domain event topics."""
