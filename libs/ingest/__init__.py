"""pos-ingest shared library: adapters, canonical model, Avro codec, Kafka stage runtime, storage."""
