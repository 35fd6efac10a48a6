"""What checkout works with, in one place: orders, the payment provider, mail, sealing."""

from __future__ import annotations

from dataclasses import dataclass

from ..models.orders import Orders
from ..security.sealed import Sealer
from .mail import Mailer
from .payments import PaymentProvider


@dataclass(frozen=True)
class Checkout:
    orders: Orders
    payments: PaymentProvider
    mailer: Mailer
    sealer: Sealer
    #: Seconds a review page's sealed state stays good.
    max_age: float
