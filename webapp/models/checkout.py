"""The checkout form's values, validated: every field gets a clear message back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .orders import SHIPPING

_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_POSTAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{1,10}[A-Za-z0-9]")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PHONE = re.compile(r"[0-9+() .-]{0,40}")

#: field → (label, required, longest)
ADDRESS_FIELDS: dict[str, tuple[str, bool, int]] = {
    "name": ("Full name", True, 200),
    "line1": ("Address", True, 200),
    "line2": ("Address line 2", False, 200),
    "city": ("Town or city", True, 100),
    "region": ("State or region", False, 100),
    "postal_code": ("Postcode or ZIP", True, 20),
    "country": ("Country code", True, 2),
    "phone": ("Phone", False, 40),
}


@dataclass
class CheckoutForm:
    """What the shopper typed (kept to show again) and what is wrong with it."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def address(self) -> dict[str, Any]:
        return {name: self.values.get(name, "") for name in ADDRESS_FIELDS}


def _clean(raw: object, longest: int) -> str:
    text = str(raw or "").strip()
    return "".join(ch for ch in text if ch.isprintable())[: longest + 1]


def validate_email(raw: object) -> tuple[str, str | None]:
    """The normalised email address and an error message, if any."""
    email = _clean(raw, 254).lower()
    if not email:
        return email, "Enter your email address, for the confirmation."
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        return email, "That does not look like an email address."
    return email, None


def parse_checkout(form: Mapping[str, object]) -> CheckoutForm:
    """Read and check email, address and shipping method (not the card)."""
    result = CheckoutForm()
    result.values["email"], error = validate_email(form.get("email"))
    if error:
        result.errors["email"] = error
    for name, (label, required, longest) in ADDRESS_FIELDS.items():
        value = _clean(form.get(name), longest)
        if name == "country":
            value = value.upper()
        result.values[name] = value
        if required and not value:
            result.errors[name] = f"{label} is needed."
        elif len(value) > longest:
            result.errors[name] = f"{label} can be at most {longest} characters."
    _check_formats(result)
    method = _clean(form.get("shipping"), 20)
    result.values["shipping"] = method
    if method not in SHIPPING:
        result.errors["shipping"] = "Choose a shipping method."
    return result


def _check_formats(result: CheckoutForm) -> None:
    values, errors = result.values, result.errors
    if "postal_code" not in errors and not _POSTAL.fullmatch(values["postal_code"]):
        errors["postal_code"] = "That postcode has characters a postcode cannot have."
    if "country" not in errors and not _COUNTRY.fullmatch(values["country"]):
        errors["country"] = "Use the two-letter country code, such as US or GB."
    if "phone" not in errors and not _PHONE.fullmatch(values["phone"]):
        errors["phone"] = "A phone number has digits, spaces and + ( ) - only."
