"""Typed Unicommerce bodies. Keys are lower-cased first: Uniware spells one key several ways across doc
versions (``SaleOrderCode``/``saleOrderCode``, ``Quantity``/``quantity``)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


def lower_keys(value: Any) -> Any:
    """Every object key lower-cased, recursively; of two spellings of one key the later wins."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


class InventoryLine(_Body):
    productid: str
    variantid: str
    inventory: str  # a string holding an integer: absolute sellable stock for the channel
    hsncode: str | None = None
    facilitycode: str | None = None


class UpdateInventory(_Body):
    inventorylist: list[InventoryLine]


class CancelItem(_Body):
    orderitemid: str
    productid: str | None = None
    variantid: str | None = None
    quantity: str | None = None


class OrdersCancel(_Body):
    orderid: str
    orderitems: list[CancelItem] = Field(default_factory=list)


class GrnItem(_Body):
    skucode: str
    quantity: str | None = None
    sellablequantity: str | None = None
    rejectedquantity: str | None = None
    batchcode: str | None = None
    expiry: str | None = None


class InflowReceipt(_Body):
    grnnumber: str
    ponumber: str | None = None
    grncreateddatetime: str | None = None
    grnitems: list[GrnItem] = Field(default_factory=list)


class GatepassItem(_Body):
    itemtypesku: str
    quantity: str | None = None
    inventorytype: str | None = None


class Gatepass(_Body):
    code: str
    statuscode: str
    type: str | None = None
    updated: str | None = None
    created: str | None = None
    gatepassitemdtos: list[GatepassItem] = Field(default_factory=list)


class ReturnItem(_Body):
    skucode: str
    orderitemid: str | None = None
    inventorytype: str | None = None


class Return(_Body):
    # the courier-allocated notification names the return by its reversePickupCode only
    returnid: str | None = None
    reversepickupcode: str | None = None
    status: str
    facilitycode: str | None = None
    createdon: str | None = None
    completedat: str | None = None
    orderitems: list[ReturnItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _named(self) -> Return:
        if not (self.returnid or self.reversepickupcode):
            raise ValueError("a return needs a returnId or a reversePickupCode")
        return self

    @property
    def key(self) -> str:
        return str(self.returnid or self.reversepickupcode)


class SnapshotLine(_Body):
    itemtypesku: str
    inventory: str


class InventorySnapshot(_Body):
    inventorysnapshots: list[SnapshotLine]


#: route name (the Uniware endpoint) → model
ROUTE_MODELS: dict[str, type[_Body]] = {
    "updateInventory": UpdateInventory,
    "orders/cancel": OrdersCancel,
    "completeInflowReceipt": InflowReceipt,
    "closeGatepass": Gatepass,
    "awaitedGatepass": Gatepass,
    "discardGatepass": Gatepass,
    "createReturn": Return,
    "allocateReturnCourier": Return,
    "completeReturn": Return,
    "inventorySnapshot": InventorySnapshot,
}
#: partner notifications Uniware pushes; those we do not translate are acknowledged and skipped
NOTIFICATION_ROUTES = ("completeInflowReceipt", "closeGatepass", "awaitedGatepass", "discardGatepass",
                       "createReturn", "allocateReturnCourier", "completeReturn", "createShipment", "invoiced",
                       "dispatchedShipment")
_GATEPASS_ROUTES = {"CLOSED": "closeGatepass", "RETURN_AWAITED": "awaitedGatepass", "DISCARDED": "discardGatepass"}
_RETURN_ROUTES = {"CREATED": "createReturn", "RETURN_AWAITED": "createReturn",
                  "COURIER_ALLOCATED": "allocateReturnCourier", "COMPLETED": "completeReturn",
                  "RETURNED": "completeReturn"}


def route_for(family: str) -> str | None:
    """The route a family names (``updateInventory``, ``orders/cancel`` also as ``ordersCancel``), if any."""
    wanted = family.strip("/").lower().replace("/", "")
    for route in (*ROUTE_MODELS, *NOTIFICATION_ROUTES, "products"):
        if route.lower().replace("/", "") == wanted:
            return route
    return None


def classify(body: dict[str, Any]) -> str | None:
    """The route a body's shape belongs to (keys already lower-cased)."""
    if "inventorylist" in body:
        return "updateInventory"
    if "inventorysnapshots" in body:
        return "inventorySnapshot"
    if "grnnumber" in body or "grnitems" in body:
        return "completeInflowReceipt"
    if "gatepassitemdtos" in body or ("code" in body and "statuscode" in body):
        return _GATEPASS_ROUTES.get(str(body.get("statuscode", "")).upper())
    if "returnid" in body or "reversepickupcode" in body:
        return _RETURN_ROUTES.get(str(body.get("status", "")).upper())
    if "orderid" in body and "orderitems" in body:
        return "orders/cancel"
    if "products" in body:
        return "products"
    return None
