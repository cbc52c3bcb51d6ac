"""The orchestrator's table of BYOC external capabilities.

Follows go-livepeer ``core/external_capabilities.go`` (``ExternalCapabilities.RegisterCapability``,
``RemoveCapability``) and ``core/ai_orchestrator.go`` (``Reserve/Free/CheckExternalCapabilityCapacity``):

- one entry per capability name; registering again replaces the entry, so its in-use count (``Load``)
  starts again at 0;
- capacity is not enforced: a reservation always succeeds while the name is registered (Load may exceed
  Capacity), and gateways only read the remainder through ``GET /process/token``;
- a release after a re-registration decrements the new entry, so Load can go below 0 (upstream too).

Plain data and no I/O, so the HTTP layer and the tests share it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

# Currencies NewAutoConvertedPrice (core/autoconvertedprice.go) prices without a price feed.
FEEDLESS_CURRENCIES = frozenset({"", "wei", "eth"})


class RegistrationError(ValueError):
    """The body is not a capability JSON (upstream: json.Unmarshal failed -> 400)."""


class UnsupportedCurrency(RuntimeError):
    """No price feed for this currency: upstream panics inside the handler (connection dropped)."""


class CapabilitySettings(BaseModel):
    """The JSON body of ``POST /capability/register``: Go's ``ExternalCapability`` json tags.

    Strict types because Go's decoder refuses a string for an int and a float for an int; unknown fields are
    ignored and missing ones take the zero value, as in Go.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    name: StrictStr = ""
    description: StrictStr = ""
    url: StrictStr = ""
    capacity: StrictInt = 0
    price_per_unit: StrictInt = 0
    price_scaling: StrictInt = 0
    currency: StrictStr = ""
    token: StrictStr = ""


def parse_settings(body: bytes | str) -> CapabilitySettings:
    """Decode a register body the way ``json.Unmarshal`` into ``ExternalCapability`` would."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistrationError(f"invalid JSON: {exc}") from exc
    if raw is None:  # Go: "null" leaves the struct at its zero value, without error
        raw = {}
    if not isinstance(raw, dict):
        raise RegistrationError(f"json: cannot unmarshal {type(raw).__name__} into Go value of type ExternalCapability")
    try:
        # Go leaves a field at its zero value when the JSON says null.
        return CapabilitySettings.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RegistrationError(f"json: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc


@dataclass
class Capability:
    name: str
    description: str
    url: str
    capacity: int
    price_per_unit: int
    price_scaling: int
    currency: str
    token: str
    registered_at: float
    load: int = 0  # upstream ExternalCapability.Load: streams/jobs in flight

    @property
    def available(self) -> int:
        """``CheckExternalCapabilityCapacity``: the remainder, never negative."""
        return max(0, self.capacity - self.load)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["available"] = self.available
        return data


@dataclass
class CapabilityTable:
    capabilities: dict[str, Capability] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def register(self, body: bytes | str, now: float | None = None) -> Capability:
        settings = parse_settings(body)
        if settings.currency.lower() not in FEEDLESS_CURRENCIES:
            self._record("register", settings.name, ok=False, error=f"unsupported currency {settings.currency!r}")
            raise UnsupportedCurrency(
                f"error converting price: PriceFeedWatcher is not initialized ({settings.currency})"
            )
        cap = Capability(
            name=settings.name,
            description=settings.description,
            url=settings.url,
            capacity=settings.capacity,
            price_per_unit=settings.price_per_unit,
            price_scaling=settings.price_scaling or 1,  # "ensure PriceScaling is not 0"
            currency=settings.currency,
            token=settings.token,
            registered_at=time.time() if now is None else now,
        )
        replaced = cap.name in self.capabilities
        self.capabilities[cap.name] = cap
        self._record("register", cap.name, url=cap.url, capacity=cap.capacity, replaced=replaced)
        return cap

    def unregister(self, name: str) -> bool:
        """``RemoveCapability``: deleting an unknown name is not an error."""
        found = self.capabilities.pop(name, None) is not None
        self._record("unregister", name, found=found)
        return found

    def drop(self, name: str, reason: str) -> None:
        """The orchestrator removes an entry by itself (worker answered 401, batch request failed)."""
        if self.capabilities.pop(name, None) is not None:
            self._record("dropped", name, reason=reason)

    def reserve(self, name: str) -> Capability | None:
        """``ReserveExternalCapabilityCapacity``: Load+1 without any capacity check; None if unknown."""
        cap = self.capabilities.get(name)
        if cap is not None:
            cap.load += 1
        return cap

    def free(self, name: str) -> None:
        """``FreeExternalCapabilityCapacity``: Load-1 on whatever entry holds the name now."""
        cap = self.capabilities.get(name)
        if cap is not None:
            cap.load -= 1

    def url(self, name: str) -> str:
        """``GetUrlForCapability``: "" when the name is not registered."""
        cap = self.capabilities.get(name)
        return "" if cap is None else cap.url

    def available(self, name: str) -> int:
        cap = self.capabilities.get(name)
        return 0 if cap is None else cap.available

    def _record(self, action: str, name: str, **details: Any) -> None:
        self.history.append({"action": action, "name": name, "at": time.time(), **details})

    def to_json(self) -> dict[str, Any]:
        return {
            "capabilities": {
                name: {**cap.to_json(), "history": [h for h in self.history if h["name"] == name]}
                for name, cap in self.capabilities.items()
            },
            "history": list(self.history),
        }
