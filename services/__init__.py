"""pos-ingest services: one subpackage per deployable."""
