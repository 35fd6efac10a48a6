"""Payment providers, and the built-in sandbox that behaves like a gateway in test mode.

The shop never keeps a card number: the checkout form's card is exchanged
for a token at once (:meth:`PaymentProvider.tokenize`), and only the token
travels on, sealed in the review form, to :meth:`PaymentProvider.authorize`.

The sandbox answers by card number, as real gateways' test modes do (every
number passes the Luhn check; any future expiry date and any 3-4 digit
security code work):

============================  =============================================
card number                   answer
============================  =============================================
4242 4242 4242 4242           approved
5555 5555 5555 4444           approved
4000 0000 0000 0002           declined: "Your card was declined."
4000 0000 0000 9995           declined: "Your card has insufficient funds."
4000 0000 0000 0259           approved after a slow answer (``slow_seconds``)
any other valid number        declined: "Use a sandbox test card."
============================  =============================================
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Authorization:
    """The provider's answer: approved with a reference, or declined with a reason."""

    approved: bool
    reference: str = ""
    reason: str = ""


class PaymentError(ValueError):
    """The card details are not acceptable; the message is for the shopper."""


class PaymentProvider(Protocol):
    """What checkout needs of a payment gateway."""

    async def tokenize(self, number: str, expiry: str, cvc: str) -> tuple[str, str]:
        """A single-use token for the card and a label to show ("Visa ending 4242").

        :raises PaymentError: a card number, expiry or code that cannot be right.
        """
        ...

    async def authorize(self, token: str, amount_cents: int, reference: str) -> Authorization:
        """Authorize *amount_cents* on the card; the same *reference* twice is one charge."""
        ...


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


_BEHAVIOUR = {
    "4242424242424242": "approve",
    "5555555555554444": "approve",
    "4000000000000002": "decline",
    "4000000000009995": "funds",
    "4000000000000259": "slow",
}
_REASONS = {
    "decline": "Your card was declined.",
    "funds": "Your card has insufficient funds.",
    "unknown": "Use a sandbox test card.",
}


def check_card(number: str, expiry: str, cvc: str, *, year: int, month: int) -> str:
    """The card's digits, if number, expiry (MM/YY) and code can be right.

    :raises PaymentError: naming what is wrong.
    """
    digits = number.replace(" ", "").replace("-", "")
    if not (digits.isdigit() and 12 <= len(digits) <= 19 and luhn_ok(digits)):
        raise PaymentError("That card number is not valid; please check it.")
    mm, slash, yy = expiry.strip().partition("/")
    if not (slash and mm.strip().isdigit() and yy.strip().isdigit()):
        raise PaymentError("Write the expiry date as MM/YY.")
    exp_month, exp_year = int(mm), 2000 + int(yy) % 100
    if not 1 <= exp_month <= 12 or (exp_year, exp_month) < (year, month):
        raise PaymentError("That card has expired, or the expiry date is wrong.")
    if not (cvc.isdigit() and 3 <= len(cvc) <= 4):
        raise PaymentError("The security code is the 3 or 4 digits on the card.")
    return digits


class SandboxProvider:
    """A gateway in test mode, in process. See the module docstring for the cards.

    :param slow_seconds: how long the "slow" card takes to answer.
    """

    def __init__(
        self,
        *,
        slow_seconds: float = 3.0,
        clock: Callable[[], time.struct_time] = time.gmtime,
    ) -> None:
        self.slow_seconds = slow_seconds
        self._clock = clock
        self._charges: dict[str, Authorization] = {}

    def _now(self) -> tuple[int, int]:
        now = self._clock()
        return now.tm_year, now.tm_mon

    async def tokenize(self, number: str, expiry: str, cvc: str) -> tuple[str, str]:
        year, month = self._now()
        digits = check_card(number, expiry, cvc, year=year, month=month)
        behaviour = _BEHAVIOUR.get(digits, "unknown")
        # The token names the behaviour, so any worker (any process) can authorize it.
        token = f"tok_{behaviour}_{secrets.token_hex(8)}"
        brand = {"4": "Visa", "5": "Mastercard", "3": "American Express"}.get(digits[0], "Card")
        return token, f"{brand} ending {digits[-4:]}"

    async def authorize(self, token: str, amount_cents: int, reference: str) -> Authorization:
        if reference in self._charges:
            return self._charges[reference]
        _tok, _, rest = token.partition("_")
        behaviour = rest.partition("_")[0]
        if behaviour == "slow":
            await asyncio.sleep(self.slow_seconds)
        if behaviour in ("approve", "slow") and amount_cents >= 0:
            ref = "sbx_" + hashlib.sha256(f"{reference}:{token}".encode()).hexdigest()[:20]
            answer = Authorization(True, reference=ref)
        else:
            answer = Authorization(False, reason=_REASONS.get(behaviour, _REASONS["unknown"]))
        self._charges[reference] = answer
        return answer
