"""The spec interpreter: pure functions from (spec, body, headers, mapping context) to values and commands."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ingest.adapters.base import CommandFactory
from ingest.adapters.declarative.payloads import CommandSpec, EventSpec, Value
from ingest.canonical.commands import COMMAND_TYPES, CommandBase
from ingest.canonical.mapping import MappingContext, MappingKey
from ingest.canonical.money import MoneyError, to_minor
from ingest.canonical.units import quantity
from ingest.errors import UnparseablePayload

_MISSING = object()


def lookup(data: Any, path: str, element: Any = None) -> Any:
    """A dotted path into the body (``@.`` starts at the current ``each`` element); missing → ``_MISSING``."""
    node, rest = (element, path[2:]) if path.startswith("@.") else (data, path)
    for part in rest.split(".") if rest else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _convert(value: Any, spec: Value, raw: Any) -> Any:
    kind = spec.as_
    if value is None or kind is None:
        return value
    if kind == "str":
        return str(value)
    if kind == "int":
        return int(value)
    if kind in ("bool", "not"):
        flag = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
        return flag if kind == "bool" else not flag
    if kind == "unix":
        return datetime.fromtimestamp(int(value), timezone.utc)
    if kind == "iso":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "quantity":
        return quantity(value)
    iso = str(raw["currency"])
    try:
        return int(value) if kind == "money_minor" else to_minor(value, iso)
    except MoneyError as exc:
        raise UnparseablePayload(str(exc), reason_code="bad_amount") from exc


def evaluate(spec: Value, body: Any, headers: Mapping[str, str], ctx: MappingContext | None,
             element: Any = None) -> Any:
    """One value. ``ctx`` None: do not resolve (used to collect mapping keys)."""
    if spec.path is not None:
        value = lookup(body, spec.path, element)
    elif spec.header is not None:
        value = headers.get(spec.header, _MISSING)
    else:
        value = spec.const
    if value is _MISSING:
        value = spec.default
    if spec.map is not None and value is not None:
        if str(value) not in spec.map:
            raise UnparseablePayload(f"no mapping for {value!r}", reason_code="unmapped_value")
        value = spec.map[str(value)]
    extra = {"currency": evaluate(spec.currency, body, headers, ctx, element)} if spec.currency else {}
    try:
        value = _convert(value, spec, extra)
    except (TypeError, ValueError) as exc:
        raise UnparseablePayload(f"cannot read {spec.path or spec.header} as {spec.as_}: {exc}") from exc
    if spec.resolve and ctx is not None and value is not None:
        return ctx.resolve(spec.resolve, value)
    return value


def elements(command: CommandSpec, body: Any) -> Iterator[Any]:
    if command.each is None:
        yield None
        return
    items = lookup(body, command.each)
    if not isinstance(items, list):
        raise UnparseablePayload(f"{command.each} is not a list", reason_code="not_a_list")
    yield from items


def keys(event: EventSpec, body: Any, headers: Mapping[str, str]) -> frozenset[MappingKey]:
    """Every (entity, external id) a value of the event resolves; raises if any value cannot be read."""
    out: set[MappingKey] = set()
    for entity, spec in (("merchant", event.merchant), ("store", event.store)):
        value = evaluate(spec, body, headers, None) if spec else None
        if value is not None:
            out.add(MappingKey(entity, str(value)))  # type: ignore[arg-type]
    for command in event.commands:
        for element in elements(command, body):
            for spec in command.fields.values():
                # every value is evaluated, so a malformed body fails here (at parse) and not later
                value = evaluate(spec, body, headers, None, element)
                if spec.resolve and value is not None:
                    out.add(MappingKey(spec.resolve, str(value)))
    return frozenset(out)


def commands(event: EventSpec, body: Any, headers: Mapping[str, str], make: CommandFactory,
             ctx: MappingContext) -> list[CommandBase]:
    out: list[CommandBase] = []
    for command in event.commands:
        model = COMMAND_TYPES[command.type]
        for element in elements(command, body):
            fields = {name: evaluate(spec, body, headers, ctx, element)
                      for name, spec in command.fields.items()}
            out.append(make(model, **fields))
    return out
