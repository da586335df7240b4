"""Omuni adapter (INFERRED export format): the interface methods over the shared streaming CSV parser."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ingest.adapters.base import AuthTraits, CommandFactory, ProviderAdapter, RawDelivery, SourceEvent
from ingest.adapters.google_merchant.feed import FeedRow, RowError, iter_rows
from ingest.adapters.omuni import translate
from ingest.adapters.omuni.payloads import INFERRED_EVENT_TYPE, INFERRED_REQUIRED_COLUMNS, InferredInventoryRow
from ingest.canonical.commands import CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.units import QuantityError, quantity
from ingest.errors import UnparseablePayload


class OmuniSource(SourceEvent):
    rows: list[InferredInventoryRow]
    #: unusable lines; the import stage records each as a validation failure
    errors: list[RowError]


class OmuniAdapter(ProviderAdapter[OmuniSource]):
    provider = "omuni"
    kind = "erp"
    # a pulled report or an uploaded file: the JWT is ours to Omuni, nothing on the file to verify
    auth = AuthTraits(covers_body=False, unsigned=True)

    def verify_signature(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        return None

    def parse(self, raw: RawDelivery) -> OmuniSource:
        rows: list[InferredInventoryRow] = []
        errors: list[RowError] = []
        for item in iter_rows([raw.body], fmt="csv", file=raw.headers.get("X-Feed-Name") or raw.raw_id,
                              comment_prefix="#"):
            if isinstance(item, RowError):
                errors.append(item)
            else:
                row, error = _typed(item)
                if row is not None:
                    rows.append(row)
                elif error is not None:
                    errors.append(error)
        if not rows:
            detail = str(errors[0]) if errors else "no rows"
            raise UnparseablePayload(f"Omuni export has no usable rows: {detail}", reason_code="empty_feed")
        # the file hash is the dedupe key (the default): the same export twice is a duplicate
        return OmuniSource(event_type=INFERRED_EVENT_TYPE, delivery=raw, rows=rows, errors=errors)

    def mapping_keys(self, source: OmuniSource) -> frozenset[MappingKey]:
        return translate.keys(source.rows)

    def to_canonical_commands(self, source: OmuniSource, mapping_context: MappingContext) -> list[CommandBase]:
        # tenantId (a JWT claim) is bound to the source when the poller is configured: no merchant in the file
        make = CommandFactory(source, mapping_context,
                              merchant_id=mapping_context.resolve_optional("merchant", self.options.get("merchant")))
        return translate.inventory_export(source.rows, make, mapping_context)


def _typed(row: FeedRow) -> tuple[InferredInventoryRow | None, RowError | None]:
    for column in INFERRED_REQUIRED_COLUMNS:
        if not row.get(column):
            return None, RowError(row.file, row.row, column, f"missing {column}", "missing_value", row.line)
    try:
        quantity(row.get("available_qty"))
    except QuantityError as exc:
        return None, RowError(row.file, row.row, "available_qty", str(exc), "invalid_quantity", row.line)
    if row.get("snapshot_at"):
        try:
            if datetime.fromisoformat(row.get("snapshot_at")).tzinfo is None:
                raise ValueError("no UTC offset")
        except ValueError as exc:
            return None, RowError(row.file, row.row, "snapshot_at", f"not an ISO time with offset: {exc}",
                                  "invalid_time", row.line)
    return InferredInventoryRow(row=row.row, fc_id=row.get("fc_id"), ean=row.get("ean"),
                                available_qty=row.get("available_qty"), sku_code=row.get("sku_code") or None,
                                style_id=row.get("style_id") or None,
                                snapshot_at=row.get("snapshot_at") or None), None
