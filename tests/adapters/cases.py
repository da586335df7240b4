"""Recorded adapter cases: ``cases/<provider>/<case>/{body.raw, headers.json, meta.json, expected.json}``.

``body.raw`` is byte-exact (never re-serialized: signatures cover bytes). ``meta.json`` names the route
family, the clock for timestamped schemes, the tenant settings and what the case expects
(``commands`` — the default — ``unsupported`` or ``unparseable``). ``expected.json`` is the golden
canonical output; regenerate with ``UPDATE_EXPECTED=1 pytest tests/adapters``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ingest.adapters.base import Headers, ProviderAdapter, RawDelivery
from ingest.adapters.registry import adapter_class
from ingest.canonical.mapping import MappingContext, TenantSettings, auto_canonical_id

CASES_DIR = Path(__file__).parent / "cases"
TEST_SECRET = "test-secret"
TENANT = "acme"
RAW_ID = "00000000-0000-4000-8000-000000000001"
RECEIVED_AT = datetime(2026, 1, 14, 10, 16, 0, tzinfo=timezone.utc)


@dataclass
class Case:
    provider: str
    name: str
    path: Path
    body: bytes
    headers: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def family(self) -> str:
        return str(self.meta.get("family", "menu"))

    @property
    def expect(self) -> str:
        return str(self.meta.get("expect", "commands"))

    @property
    def now(self) -> datetime:
        text = self.meta.get("now")
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else RECEIVED_AT

    @property
    def secret(self) -> str:
        return str(self.meta.get("secret", TEST_SECRET))

    def adapter(self) -> ProviderAdapter:  # type: ignore[type-arg]
        now = self.now
        return adapter_class(self.provider)([self.secret], options=self.meta.get("options", {}),
                                             now=lambda: now)

    def delivery(self, body: bytes | None = None) -> RawDelivery:
        return RawDelivery(body=self.body if body is None else body, headers=Headers(self.headers),
                           raw_id=RAW_ID, tenant_id=TENANT, provider=self.provider, family=self.family,
                           received_at=RECEIVED_AT, route=self.meta.get("route", ""),
                           content_type=self.headers.get("Content-Type", "application/json"),
                           tenant=self.tenant_settings())

    def tenant_settings(self) -> TenantSettings:
        return TenantSettings(TENANT, **self.meta.get("tenant", {}))

    def context(self, keys: frozenset, drop: Any = None) -> MappingContext:  # type: ignore[type-arg]
        ids = {k: auto_canonical_id(TENANT, self.provider, k) for k in keys if k != drop}
        return MappingContext(TENANT, self.provider, ids, self.tenant_settings())


def load_cases(provider: str | None = None) -> list[Case]:
    out = []
    for case_dir in sorted(CASES_DIR.glob("*/*")):
        if not (case_dir / "body.raw").exists():
            continue
        if provider and case_dir.parent.name != provider:
            continue
        headers_path = case_dir / "headers.json"
        meta_path = case_dir / "meta.json"
        headers = json.loads(headers_path.read_text()) if headers_path.exists() else {}
        headers = {k: v for k, v in headers.items() if not k.startswith("_")}
        out.append(Case(provider=case_dir.parent.name, name=case_dir.name, path=case_dir,
                        body=(case_dir / "body.raw").read_bytes(), headers=headers,
                        meta=json.loads(meta_path.read_text()) if meta_path.exists() else {}))
    return out


def record(provider: str, name: str, body_path: Path, headers_path: Path | None, meta: dict[str, Any]) -> Path:
    """Create a case from a sample file, byte-exact (used once per sample; see tests/adapters/README)."""
    case_dir = CASES_DIR / provider / name
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "body.raw").write_bytes(body_path.read_bytes())
    if headers_path and headers_path.exists():
        (case_dir / "headers.json").write_text(headers_path.read_text())
    (case_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return case_dir
