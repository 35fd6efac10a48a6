"""The shop's schema as SQLAlchemy Core tables: the one truth the migrations must match.

Money is integer cents. Timestamps are timezone-aware UTC
(:class:`Timestamp`); identifiers that grow with traffic are 64-bit
(:data:`BigID`, a plain ``INTEGER`` on SQLite so it stays the rowid).
Inventory lives apart from products because it changes far more often.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "BigID",
    "Timestamp",
    "addresses",
    "brands",
    "cart_lines",
    "carts",
    "catalog_meta",
    "categories",
    "customers",
    "inventory",
    "metadata",
    "order_lines",
    "orders",
    "password_resets",
    "products",
    "sessions",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: A 64-bit surrogate key; ``INTEGER`` on SQLite, where only that is the autoincrementing rowid.
BigID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class Timestamp(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always reads and writes aware UTC datetimes.

    SQLite keeps no zone, so values are stored as UTC and read back with
    ``tzinfo=UTC``; naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> Column[datetime]:
    return Column("created_at", Timestamp(), nullable=False)


def _updated() -> Column[datetime]:
    return Column("updated_at", Timestamp(), nullable=False)


categories = Table(
    "categories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, ForeignKey("categories.id", ondelete="RESTRICT"), nullable=True),
    Column("slug", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("path", String(500), nullable=False, unique=True),
    Column("depth", Integer, nullable=False),
    Column("sort_order", Integer, nullable=False),
    CheckConstraint("depth >= 0", name="depth_nonnegative"),
    Index("ix_categories_parent", "parent_id", "sort_order"),
)

brands = Table(
    "brands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sku", String(40), nullable=False, unique=True),
    Column("slug", String(200), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("brand_id", Integer, ForeignKey("brands.id", ondelete="RESTRICT"), nullable=False),
    Column(
        "category_id", Integer, ForeignKey("categories.id", ondelete="RESTRICT"), nullable=False
    ),
    Column("price_cents", Integer, nullable=False),
    Column("age_min", Integer, nullable=False),
    Column("age_max", Integer, nullable=False),
    Column("popularity", Integer, nullable=False),
    Column("image", String(40), nullable=False),
    _created(),
    _updated(),
    CheckConstraint("price_cents >= 0", name="price_nonnegative"),
    CheckConstraint("age_min >= 0 AND age_min <= age_max", name="age_range"),
    Index("ix_products_brand", "brand_id"),
    Index("ix_products_created_at", "created_at"),
)

# Category listings read "WHERE category_id = ? ORDER BY popularity DESC".
Index("ix_products_category_popularity", products.c.category_id, products.c.popularity.desc())
# The shop-wide best sellers read "ORDER BY popularity DESC, id LIMIT n".
Index("ix_products_popularity", products.c.popularity.desc(), products.c.id)

inventory = Table(
    "inventory",
    metadata,
    Column(
        "product_id",
        Integer,
        ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    _updated(),
    CheckConstraint("on_hand >= 0", name="on_hand_nonnegative"),
    CheckConstraint("reserved >= 0", name="reserved_nonnegative"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", BigID, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    _created(),
    CheckConstraint("email = lower(email)", name="email_lower_case"),
)

addresses = Table(
    "addresses",
    metadata,
    Column("id", BigID, primary_key=True, autoincrement=True),
    Column("customer_id", BigID, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200), nullable=False, server_default=""),
    Column("city", String(100), nullable=False),
    Column("region", String(100), nullable=False, server_default=""),
    Column("postal_code", String(20), nullable=False),
    Column("country", String(2), nullable=False),
    Column("phone", String(40), nullable=False, server_default=""),
    Column("is_default", Boolean(create_constraint=False), nullable=False, server_default=false()),
    _created(),
    Index("ix_addresses_customer", "customer_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", BigID, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
    Column("data", JSON, nullable=False),
    _created(),
    Column("expires_at", Timestamp(), nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
    Index("ix_sessions_customer", "customer_id"),
)

carts = Table(
    "carts",
    metadata,
    Column("id", BigID, primary_key=True, autoincrement=True),
    Column("session_id", String(64), nullable=True),
    Column("customer_id", BigID, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(20), nullable=False, server_default="open"),
    _created(),
    _updated(),
    CheckConstraint("status IN ('open', 'merged', 'ordered')", name="status"),
    Index("ix_carts_session", "session_id"),
    Index("ix_carts_customer", "customer_id"),
)

cart_lines = Table(
    "cart_lines",
    metadata,
    Column("cart_id", BigID, ForeignKey("carts.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", Timestamp(), nullable=False),
    PrimaryKeyConstraint("cart_id", "product_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", BigID, primary_key=True, autoincrement=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("customer_id", BigID, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
    Column("email", String(254), nullable=False),
    Column("status", String(20), nullable=False),
    Column("subtotal_cents", Integer, nullable=False),
    Column("shipping_cents", Integer, nullable=False),
    Column("tax_cents", Integer, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("shipping_method", String(40), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("payment_ref", String(100), nullable=True),
    _created(),
    _updated(),
    CheckConstraint(
        "subtotal_cents >= 0 AND shipping_cents >= 0 AND tax_cents >= 0 AND total_cents >= 0",
        name="money_nonnegative",
    ),
    Index("ix_orders_customer", "customer_id", "created_at"),
    Index("ix_orders_created_at", "created_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", BigID, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("product_id", Integer, ForeignKey("products.id", ondelete="RESTRICT"), nullable=False),
    Column("sku", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
    CheckConstraint("quantity > 0 AND unit_price_cents >= 0", name="line_values"),
    Index("ix_order_lines_product", "product_id"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("customer_id", BigID, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    _created(),
    Column("expires_at", Timestamp(), nullable=False),
    Column("used_at", Timestamp(), nullable=True),
    Index("ix_password_resets_customer", "customer_id"),
)

catalog_meta = Table(
    "catalog_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
