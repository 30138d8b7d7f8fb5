"""The source extract contracts of ``docs/contracts/extracts.md`` as data.

One :class:`Entity` per delivered file kind. The generator writes exactly these
columns, the loader validates against them and creates the ``raw`` tables from
them, and the dbt sources describe the same tables. Change a contract here and
in the spec together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "int", "numeric", "date", "timestamptz"]

#: PostgreSQL type for each contract type.
PG_TYPES: dict[str, str] = {
    "text": "text",
    "int": "integer",
    "numeric": "numeric(14, 2)",
    "date": "date",
    "timestamptz": "timestamptz",
}


@dataclass(frozen=True)
class Column:
    """One contract column: its name, type and the checks a value must pass."""

    name: str
    type: ColumnType
    required: bool = False  # null / empty refused
    enum: tuple[str, ...] | None = None
    min_value: float | None = None  # inclusive
    max_value: float | None = None  # inclusive
    exclusive_min: bool = False  # min_value itself refused (quantity > 0)
    pattern: str | None = None  # regular expression a text value must match
    pii: bool = False
    #: prose (names, notes, reasons): the only values that may hold a line break; in a
    #: code, identifier or typed value a line break means a broken record (a stray quote)
    prose: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """A reference the contract names: ``column`` must exist in ``entity.key``."""

    column: str
    entity: str  # "<source>.<entity>"
    ref_column: str
    #: only check when this condition on the row holds (e.g. tier 2 agents)
    when: tuple[str, str] | None = None


@dataclass(frozen=True)
class Entity:
    """One delivered file kind of one source."""

    source: str
    name: str
    formats: tuple[str, ...]  # accepted file endings, first is the default
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = True  # the business-date folder is incomplete without it
    snapshot: bool = False  # full snapshot every day
    foreign_keys: tuple[ForeignKey, ...] = field(default_factory=tuple)

    @property
    def qualified(self) -> str:
        """``<source>.<entity>``, the name used in manifests and logs."""
        return f"{self.source}.{self.name}"

    @property
    def raw_table(self) -> str:
        """Unqualified name of the raw table: ``<source>__<entity>``."""
        return f"{self.source}__{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


TS = "timestamptz"
_REGION = r"^[0-9]{6}$"

PARTNERS = Entity(
    source="crm",
    name="partners",
    formats=("csv",),
    snapshot=True,
    key=("partner_id",),
    columns=(
        Column("partner_id", "text", required=True, pattern=r"^[DA][0-9]+$"),
        Column("partner_name", "text", required=True, prose=True),
        Column("tier", "int", required=True, enum=("1", "2")),
        Column("parent_partner_id", "text"),
        Column("region_code", "text", required=True, pattern=_REGION),
        Column("industry", "text", prose=True),
        Column("status", "text", required=True, enum=("active", "suspended", "terminated")),
        Column("signed_date", "date", required=True),
        Column("terminated_date", "date"),
        Column("channel_manager_id", "text"),
        Column("contact_phone", "text", pii=True),
        Column("updated_at", TS, required=True),
    ),
    foreign_keys=(
        # an agent's parent dealer must exist (in this snapshot or already known)
        ForeignKey("parent_partner_id", "crm.partners", "partner_id", when=("tier", "2")),
    ),
)

CHANNEL_MANAGERS = Entity(
    source="crm",
    name="channel_managers",
    formats=("csv",),
    snapshot=True,
    key=("manager_id",),
    columns=(
        Column("manager_id", "text", required=True),
        Column("manager_name", "text", required=True, prose=True),
        Column("region_code", "text", required=True, pattern=_REGION),
        Column("hired_date", "date"),
        Column("status", "text", required=True, enum=("active", "left")),
        Column("updated_at", TS, required=True),
    ),
)

PRODUCTS = Entity(
    source="crm",
    name="products",
    formats=("csv",),
    snapshot=True,
    key=("sku",),
    columns=(
        Column("sku", "text", required=True),
        Column("product_name", "text", required=True, prose=True),
        Column("category", "text", prose=True),
        Column("unit", "text"),
        Column("list_price", "numeric", min_value=0),
        Column("updated_at", TS, required=True),
    ),
)

CHANNEL_FILINGS = Entity(
    source="crm",
    name="channel_filings",
    formats=("csv",),
    required=False,
    key=("filing_id",),
    columns=(
        Column("filing_id", "text", required=True),
        Column("partner_id", "text", required=True),
        Column("filing_type", "text", required=True, enum=("new", "change", "termination")),
        Column("status", "text", required=True, enum=("submitted", "approved", "rejected", "filed")),
        Column("submitted_at", TS, required=True),
        Column("approved_at", TS),
        Column("approver_id", "text"),
        Column("reason", "text", prose=True),
        Column("updated_at", TS, required=True),
    ),
)

VISITS = Entity(
    source="crm",
    name="visits",
    formats=("csv",),
    key=("visit_id",),
    columns=(
        Column("visit_id", "text", required=True),
        Column("manager_id", "text", required=True),
        Column("partner_id", "text", required=True),
        Column("visit_type", "text", required=True, enum=("inspection", "training", "promotion", "other")),
        Column("visited_at", TS, required=True),
        Column("duration_minutes", "int", min_value=0),
        Column("issues_found", "int", min_value=0),
        Column("notes", "text", prose=True),
        Column("updated_at", TS, required=True),
    ),
    foreign_keys=(
        ForeignKey("manager_id", "crm.channel_managers", "manager_id"),
        ForeignKey("partner_id", "crm.partners", "partner_id"),
    ),
)

CALLS = Entity(
    source="call_center",
    name="calls",
    formats=("jsonl", "jsonl.gz"),
    key=("call_id",),
    columns=(
        Column("call_id", "text", required=True),
        Column("direction", "text", required=True, enum=("inbound", "outbound")),
        Column("call_type", "text", required=True, enum=("callback", "sales", "support", "complaint")),
        Column("partner_id", "text"),
        Column("customer_phone", "text", pii=True),
        Column("agent_id", "text", required=True),
        Column("started_at", TS, required=True),
        Column("ended_at", TS),
        Column("duration_seconds", "int", min_value=0),
        Column("outcome", "text", required=True, enum=("connected", "no_answer", "busy", "failed")),
        Column("satisfaction", "int", min_value=1, max_value=5),
    ),
)

ORDERS = Entity(
    source="dealer_sales",
    name="orders",
    formats=("csv", "xlsx"),
    key=("order_id", "order_line"),
    columns=(
        Column("order_id", "text", required=True),
        Column("order_line", "int", required=True, min_value=1),
        Column("order_date", "date", required=True),
        Column("seller_partner_id", "text", required=True),
        Column("buyer_partner_id", "text"),
        Column("sku", "text", required=True),
        Column("quantity", "int", required=True, min_value=0, exclusive_min=True),
        Column("unit_price", "numeric", required=True, min_value=0),
        Column("status", "text", required=True, enum=("placed", "shipped", "cancelled", "returned")),
        Column("updated_at", TS, required=True),
    ),
    foreign_keys=(ForeignKey("sku", "crm.products", "sku"),),
)

INVENTORY = Entity(
    source="dealer_sales",
    name="inventory",
    formats=("csv", "xlsx"),
    key=("snapshot_date", "partner_id", "sku"),
    columns=(
        Column("snapshot_date", "date", required=True),
        Column("partner_id", "text", required=True),
        Column("sku", "text", required=True),
        Column("on_hand_qty", "int", required=True, min_value=0),
        Column("in_transit_qty", "int", min_value=0),
    ),
    foreign_keys=(ForeignKey("sku", "crm.products", "sku"),),
)

ENTITIES: tuple[Entity, ...] = (
    PARTNERS,
    CHANNEL_MANAGERS,
    PRODUCTS,
    CHANNEL_FILINGS,
    VISITS,
    CALLS,
    ORDERS,
    INVENTORY,
)

SOURCES: tuple[str, ...] = ("crm", "call_center", "dealer_sales")

#: Load metadata columns every raw table carries after the contract columns: only what
#: differs per row or scopes a night. What is the same for every row of a file (its name,
#: checksum, when it was loaded) is kept once, in ``ops.load_manifest`` (``ops.raw_files``
#: by ``_load_id``): per row it cost the server more than half its COPY speed.
RAW_METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_extra", "jsonb"),  # columns the contract does not know (schema drift)
    ("_business_date", "date not null"),
    ("_line_number", "integer not null"),
    ("_load_id", "bigint not null"),
)

#: per-file columns earlier releases repeated on every raw row (dropped by the migration)
RETIRED_RAW_COLUMNS: tuple[str, ...] = ("_source_file", "_file_sha256", "_loaded_at")


def entity(qualified: str) -> Entity:
    """Look an entity up by ``<source>.<entity>``."""
    for e in ENTITIES:
        if e.qualified == qualified:
            return e
    raise KeyError(f"no such entity: {qualified}")


def entities_of(source: str) -> tuple[Entity, ...]:
    """The entities one source delivers, in contract order."""
    return tuple(e for e in ENTITIES if e.source == source)
