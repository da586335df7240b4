"""Omuni specifics (INFERRED export): token helpers, row errors, snapshot semantics."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ingest.adapters.omuni.payloads import jwt_claims, token_pair, token_request
from ingest.errors import UnparseablePayload
from tests.adapters.cases import Case, load_cases

CASES = {c.name: c for c in load_cases("omuni")}
CASE = CASES["inventory_export.INFERRED"]
SAMPLES = Path("/work/shared/reference/samples/erp/omuni")


def _with_body(body: bytes) -> Case:
    return Case(CASE.provider, CASE.name, CASE.path, body, dict(CASE.headers), dict(CASE.meta))


def test_given_credentials_then_token_request_has_observed_shape() -> None:
    expected = json.loads((SAMPLES / "auth_token.request.json").read_bytes())
    assert json.loads(token_request(expected["username"], expected["password"])) == expected


def test_given_token_response_then_access_and_refresh_tokens() -> None:
    access, refresh = token_pair((SAMPLES / "auth_token.response.json").read_bytes())
    assert access.startswith("eyJ") and refresh and refresh.startswith("eyJ")
    with pytest.raises(ValueError):
        token_pair(b'{"data": {}}')


def test_given_jwt_then_tenant_claim_read_and_garbage_refused() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"tenantId": "t-1", "aud": "odin"}).encode()).rstrip(b"=")
    assert jwt_claims(f"h.{claims.decode()}.s")["tenantId"] == "t-1"
    with pytest.raises(ValueError):
        jwt_claims("nojwt")


def test_given_bad_lines_then_they_are_row_errors_and_good_lines_translate() -> None:
    body = CASE.body + (b"FC-BLR-KOR-01,,X,STY,5,0,2026-01-14T10:15:00+05:30\n"
                        b"FC-BLR-KOR-01,8901,X,STY,five,0,2026-01-14T10:15:00+05:30\n"
                        b"FC-BLR-KOR-01,8902,X,STY,5,0,2026-01-14 10:15\n")
    case = _with_body(body)
    adapter = case.adapter()
    source = adapter.parse(case.delivery())
    assert [(e.row, e.column) for e in source.errors] == [(3, "ean"), (4, "available_qty"), (5, "snapshot_at")]
    assert len(adapter.to_canonical_commands(source, case.context(adapter.mapping_keys(source)))) == 2


def test_given_only_comments_and_header_then_unparseable() -> None:
    with pytest.raises(UnparseablePayload):
        CASE.adapter().parse(_with_body(b"# nothing yet\nfc_id,ean,available_qty\n").delivery())


def test_given_export_then_absolute_snapshot_per_fc_and_ean_at_export_time() -> None:
    adapter = CASE.adapter()
    source = adapter.parse(CASE.delivery())
    assert {str(k) for k in adapter.mapping_keys(source)} == {
        "store:FC-BLR-KOR-01", "item:8901262010016", "item:8901030865237"}
    commands = adapter.to_canonical_commands(source, CASE.context(adapter.mapping_keys(source)))
    assert [(c.mode, c.quantity, c.occurred_at.isoformat()) for c in commands] == [
        ("absolute", "42", "2026-01-14T04:45:00+00:00"), ("absolute", "46", "2026-01-14T04:45:00+00:00")]


def test_given_excel_export_with_bom_crlf_and_reordered_columns_then_na_quantity_is_a_row_error() -> None:
    case = CASES["inventory_export.INFERRED.excel-export"]
    source = case.adapter().parse(case.delivery())
    assert [(e.row, e.line, e.column, e.reason_code) for e in source.errors] == [
        (4, 5, "available_qty", "invalid_quantity")]
    assert [r.ean for r in source.rows] == ["08901262010016", "8901030865237", "8906007280015"]
