"""Google Merchant adapter: the interface methods for a small inline feed; big files go through ``feed``."""
from __future__ import annotations

from collections.abc import Mapping

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, SourceEvent
from ingest.adapters.google_merchant import translate
from ingest.adapters.google_merchant.feed import FeedRow, RowError, iter_rows
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.errors import UnparseablePayload


class GoogleFeedSource(SourceEvent):
    rows: list[FeedRow]
    #: rows that cannot be used; the import stage records each as a validation failure
    errors: list[RowError]


class GoogleMerchantAdapter(ProviderAdapter[GoogleFeedSource]):
    """Options: ``merchant`` / ``store`` (external ids to resolve), ``currency`` (for bare-number prices)."""

    provider = "google-merchant"
    kind = "seller"
    # files carry no credential: the import route's admin auth or our own fetcher vouches for them
    auth = AuthTraits(covers_body=False, unsigned=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        return None

    def parse(self, raw: RawDelivery) -> GoogleFeedSource:
        name = raw.headers.get("X-Feed-Name") or raw.route or raw.raw_id
        items = list(iter_rows([raw.body], file=name, filename=raw.headers.get("X-Feed-Name"),
                               content_type=raw.content_type or raw.headers.get("Content-Type")))
        rows = [i for i in items if isinstance(i, FeedRow)]
        errors = [i for i in items if isinstance(i, RowError)]
        if not rows:
            detail = str(errors[0]) if errors else "no product rows"
            raise UnparseablePayload(f"feed has no usable rows: {detail}", reason_code="empty_feed")
        # the same file again is a duplicate (default dedupe: sha256 of the body)
        return GoogleFeedSource(event_type="feed", payload=None, delivery=raw, rows=rows, errors=errors)

    def mapping_keys(self, source: GoogleFeedSource) -> frozenset[MappingKey]:
        keys = set(translate.row_keys(source.rows))
        for entity in ("merchant", "store"):
            if self.options.get(entity):
                keys.add(MappingKey(entity, str(self.options[entity])))  # type: ignore[arg-type]
        return frozenset(keys)

    def to_canonical_commands(self, source: GoogleFeedSource, mapping_context: MappingContext
                              ) -> list[CommandBase]:
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", self.options.get("merchant")))
        store_id = mapping_context.resolve_optional("store", self.options.get("store"))
        currency = self.options.get("currency") or mapping_context.tenant.default_currency
        return translate.rows_to_commands(source.rows, make, mapping_context, default_currency=currency,
                                          store_id=store_id).commands
