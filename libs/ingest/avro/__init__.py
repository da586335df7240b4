"""Avro single-object encoding over the schemas in ``schemas/``, parsed once."""
from __future__ import annotations

from ingest.avro.codec import Codec, DecodeError, codec, crc64_avro

__all__ = ["Codec", "DecodeError", "codec", "crc64_avro"]
