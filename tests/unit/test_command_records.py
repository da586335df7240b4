"""``CommandBase.record_of`` (the feeds stage's commands without a pydantic model) against pydantic itself.

Wherever ``record_of`` returns a record it must be ``cls.model_validate(fields).to_record()``: the same keys in
the same order, equal values of the same types (containers fresh copies). Wherever pydantic would coerce or
refuse a value it must return None, so that the caller validates and refuses exactly as before.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.adapters.base import CommandFactory, RawDelivery, SourceEvent, Headers
from ingest.canonical.commands import COMMAND_TYPES, CommandBase, CommandRecord
from ingest.canonical.mapping import MappingContext
from ingest.errors import InvalidCommand

AWARE = datetime(2026, 1, 14, 10, 16, tzinfo=timezone.utc)


class Text(str):
    pass


class Moment(datetime):
    pass


VALUES: list[Any] = [
    "x", "", " padded ", "\ud800", "12", "true", "absolute", "delta", "base", "sale", "snapshot", "OPEN", "READY",
    "2026-01-14T10:16:00Z", Text("sub"), 0, 1, -5, 10**30, True, False, None, 1.5, 2.0, Decimal("1.50"),
    Decimal("NaN"), AWARE, datetime(2026, 1, 14, 10, 16), AWARE.astimezone(timezone(timedelta(hours=5, minutes=30))),
    Moment(2026, 1, 1, tzinfo=timezone.utc), date(2026, 1, 14), [], ["a", "b"], ["a", 1], [Text("t")], ("a",),
    {}, {"k": "v"}, {"k": 1}, {1: "v"}, {"k": Text("v")}, b"bytes",
]


def _valid(cls: type[CommandBase]) -> dict[str, Any]:
    """A plainly valid field dict for ``cls``: what the feeds stage passes."""
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        text = str(info.annotation)
        if not info.is_required():
            continue
        if "datetime" in text:
            out[name] = AWARE
        elif "Literal" in text:
            out[name] = info.annotation.__args__[0]  # type: ignore[union-attr]
        elif "int" in text:
            out[name] = 100
        else:
            out[name] = f"{name}-value"
    return out


def _same(cls: type[CommandBase], fields: dict[str, Any]) -> None:
    fast = cls.record_of(fields)
    try:
        slow: dict[str, Any] | None = cls.model_validate(fields).to_record()
    except (ValidationError, TypeError):  # a validator's TypeError is not pydantic's: it escapes as it is
        slow = None
    if fast is None:
        return
    assert slow is not None, fields
    assert list(fast) == list(slow)
    for key in slow:
        assert fast[key] == slow[key] and type(fast[key]) is type(slow[key]), key
        if isinstance(slow[key], (list, dict)):
            assert fast[key] is not fields.get(key)


@pytest.mark.parametrize("name", sorted(COMMAND_TYPES))
def test_record_of_a_plain_command_is_its_validated_record(name: str) -> None:
    cls = COMMAND_TYPES[name]
    fields = _valid(cls)
    if name == "UpsertMenuItem":  # a nested model field: never vouched for, always pydantic
        assert cls.record_of(fields) is None
        return
    assert cls.record_of(fields) is not None
    _same(cls, fields)


@pytest.mark.parametrize("name", sorted(COMMAND_TYPES))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_record_of_is_pydantic_or_nothing(name: str, data: st.DataObject) -> None:
    cls = COMMAND_TYPES[name]
    fields = _valid(cls)
    names = list(cls.model_fields) + ["extra", "itemId", "commandType"]
    for field in data.draw(st.lists(st.sampled_from(names), max_size=6)):
        if data.draw(st.booleans()):
            fields.pop(field, None)
        else:
            fields[field] = data.draw(st.sampled_from(VALUES))
    _same(cls, fields)


def test_factory_record_refuses_what_the_factory_refuses() -> None:
    from ingest.canonical.commands import UpdatePrice, UpdateStockLevel

    raw = RawDelivery(b"", Headers({}), "00000000-0000-4000-8000-000000000001", "acme", "p", "import", AWARE)
    source = SourceEvent(event_type="feed", delivery=raw)
    ctx = MappingContext("acme", "p")
    for cls, fields in ((UpdateStockLevel, {"item_id": "i", "external_item_id": "e", "mode": "sideways"}),
                        (UpdatePrice, {"item_id": "i", "external_item_id": "e", "amount_minor": "12x",
                                       "currency": "USD"})):
        with pytest.raises(InvalidCommand) as slow:
            CommandFactory(source, ctx)(cls, **fields)
        with pytest.raises(InvalidCommand) as fast:
            CommandFactory(source, ctx).record(cls, **fields)
        assert (fast.value.message, fast.value.reason_code) == (slow.value.message, slow.value.reason_code)
    made = CommandFactory(source, ctx).record(UpdateStockLevel, item_id="i", external_item_id="e",
                                              quantity=Decimal("2.50"))
    model = CommandFactory(source, ctx)(UpdateStockLevel, item_id="i", external_item_id="e", quantity=Decimal("2.50"))
    assert isinstance(made, CommandRecord) and made.to_record() == model.to_record()
    assert made.command_type == model.command_type
