"""Small, valid extract files for tests and benchmarks of the loader (not the sample generator).

Part of the development tools (``tools/``), never of the production package.

``day_rows`` makes a consistent little day (managers, products, partners, filings,
visits, calls, orders, inventory); the ``write_*`` helpers put rows into a
landing zone in any accepted format and encoding.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from upath import UPath

from qudao.contracts import Entity, entity

Row = dict[str, Any]


def day_rows(business_date: date, n: int = 5) -> dict[str, list[Row]]:
    """Valid rows for every entity of one business date, keyed by qualified name."""
    d = business_date.isoformat()
    ts = f"{d}T09:30:00+08:00"
    managers = [
        {
            "manager_id": f"M{i:03d}",
            "manager_name": f"经理{i}",
            "region_code": "110105",
            "hired_date": "2020-01-15",
            "status": "active",
            "updated_at": ts,
        }
        for i in range(1, n + 1)
    ]
    products = [
        {
            "sku": f"SKU{i:04d}",
            "product_name": f"瓷砖{i}号",
            "category": "建材",
            "unit": "箱",
            "list_price": f"{10 + i}.50",
            "updated_at": ts,
        }
        for i in range(1, n + 1)
    ]
    dealers = [
        {
            "partner_id": f"D{i:04d}",
            "partner_name": f"北京建材{i}有限公司",
            "tier": "1",
            "parent_partner_id": "",
            "region_code": "110105",
            "industry": "建材",
            "status": "active",
            "signed_date": "2021-03-01",
            "terminated_date": "",
            "channel_manager_id": f"M{i:03d}",
            "contact_phone": f"+86 138 0013 {i:04d}",
            "updated_at": ts,
        }
        for i in range(1, n + 1)
    ]
    agents = [
        {
            **dealers[i - 1],
            "partner_id": f"A{i:06d}",
            "partner_name": f"朝阳五金{i}店",
            "tier": "2",
            "parent_partner_id": f"D{i:04d}",
        }
        for i in range(1, n + 1)
    ]
    filings = [
        {
            "filing_id": f"F{i:05d}",
            "partner_id": f"A{i:06d}",
            "filing_type": "new",
            "status": "submitted",
            "submitted_at": f"{d} 10:00:00",
            "approved_at": "",
            "approver_id": "",
            "reason": "新增二级代理, 含逗号",
            "updated_at": ts,
        }
        for i in range(1, n + 1)
    ]
    visits = [
        {
            "visit_id": f"V{i:06d}",
            "manager_id": f"M{i:03d}",
            "partner_id": f"D{i:04d}",
            "visit_type": "inspection",
            "visited_at": f"{d}T14:00:00",
            "duration_minutes": str(30 + i),
            "issues_found": str(i % 3),
            "notes": "库存正常\n陈列需改进" if i == 1 else "ok",
            "updated_at": ts,
        }
        for i in range(1, n + 1)
    ]
    calls = [
        {
            "call_id": f"C{i:07d}",
            "direction": "outbound",
            "call_type": "callback",
            "partner_id": f"A{i:06d}",
            "customer_phone": f"1390000{i:04d}",
            "agent_id": "AG01",
            "started_at": f"{d}T11:00:00+08:00",
            "ended_at": f"{d}T11:05:00+08:00",
            "duration_seconds": 300,
            "outcome": "connected",
            "satisfaction": 5 if i % 2 else None,
        }
        for i in range(1, n + 1)
    ]
    orders = [
        {
            "order_id": f"O{i:08d}",
            "order_line": str(1 + i % 2),
            "order_date": d,
            "seller_partner_id": f"D{i:04d}",
            "buyer_partner_id": f"A{i:06d}" if i % 2 else "",
            "sku": f"SKU{i:04d}",
            "quantity": str(i),
            "unit_price": f"{i}.25",
            "status": "placed",
            "updated_at": f"{d}T16:00:00",
        }
        for i in range(1, n + 1)
    ]
    inventory = [
        {
            "snapshot_date": d,
            "partner_id": f"D{i:04d}",
            "sku": f"SKU{i:04d}",
            "on_hand_qty": str(100 + i),
            "in_transit_qty": "0",
        }
        for i in range(1, n + 1)
    ]
    return {
        "crm.channel_managers": managers,
        "crm.products": products,
        "crm.partners": dealers + agents,
        "crm.channel_filings": filings,
        "crm.visits": visits,
        "call_center.calls": calls,
        "dealer_sales.orders": orders,
        "dealer_sales.inventory": inventory,
    }


def file_path(landing: str | UPath, e: Entity, business_date: date, fmt: str | None = None) -> UPath:
    root = landing if isinstance(landing, UPath) else UPath(landing)
    return root / e.source / business_date.isoformat() / f"{e.name}.{fmt or e.formats[0]}"


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], encoding: str = "utf-8") -> bytes:
    """CSV text (RFC 4180, CRLF) encoded as given (``utf-8``, ``utf-8-sig``, ``gb18030``)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def write_bytes(path: UPath, data: bytes) -> UPath:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
    return path


def write_entity(
    landing: str | UPath,
    qualified: str,
    business_date: date,
    rows: list[Row],
    fmt: str | None = None,
    encoding: str = "utf-8",
    header: Sequence[str] | None = None,
) -> UPath:
    """Write rows of one entity in ``fmt`` (default: its first format) and return the path."""
    e = entity(qualified)
    fmt = fmt or e.formats[0]
    cols = list(header) if header is not None else list(e.column_names)
    path = file_path(landing, e, business_date, fmt)
    if fmt == "csv":
        data = csv_bytes(cols, ([r.get(c.strip().lower(), "") for c in cols] for r in rows), encoding)
    elif fmt in ("jsonl", "jsonl.gz"):
        text = "".join(json.dumps({c: r.get(c) for c in cols}, ensure_ascii=False) + "\n" for r in rows)
        data = text.encode("utf-8")
        if fmt == "jsonl.gz":
            data = gzip.compress(data)
    elif fmt == "xlsx":
        data = xlsx_bytes(cols, [[r.get(c.strip().lower(), "") for c in cols] for r in rows])
    else:
        raise ValueError(fmt)
    return write_bytes(path, data)


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A one-sheet workbook; numeric-looking strings become numbers as a spreadsheet would hold them."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("orders")
    ws.append(list(header))
    for row in rows:
        ws.append([_spreadsheet_value(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _spreadsheet_value(v: Any) -> Any:
    if isinstance(v, str) and v and v.isascii():
        if v.isdigit() and not v.startswith("0"):
            return int(v)
        try:
            return date.fromisoformat(v) if len(v) == 10 and v[4] == "-" else float(v) if "." in v else v
        except ValueError:
            return v
    return None if v == "" else v


def write_day(
    landing: str | UPath, business_date: date, n: int = 5, skip: Sequence[str] = ()
) -> dict[str, list[Row]]:
    """Write a whole valid day (every entity in its default format); return the rows written."""
    rows = day_rows(business_date, n)
    for qualified, entity_rows in rows.items():
        if qualified not in skip:
            write_entity(landing, qualified, business_date, entity_rows)
    return rows


def next_day(d: date) -> date:
    return d + timedelta(days=1)


def write_orders_csv(
    path: UPath, rows: int, business_date: date, skus: int = 5, encoding: str = "utf-8", bad_every: int = 0
) -> UPath:
    """Stream a large valid ``orders.csv`` (skus ``SKU0001``… as :func:`day_rows` makes them).

    With ``bad_every`` = k, every k-th row has a negative quantity (a reject). For
    benchmarks and the kill test; memory stays flat whatever ``rows`` is.
    """
    d = business_date.isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(entity("dealer_sales.orders").column_names) + "\r\n"
    with path.open("wb") as f:
        f.write(header.encode(encoding))
        for start in range(0, rows, 10_000):
            lines = []
            for i in range(start, min(rows, start + 10_000)):
                qty = -1 if bad_every and i % bad_every == bad_every - 1 else 1 + i % 20
                lines.append(
                    f"O{i // 3:09d},{1 + i % 3},{d},D{1 + i % 97:04d},{f'A{i % 500:06d}' if i % 2 else ''},"
                    f"SKU{1 + i % skus:04d},{qty},{i % 1000}.{i % 100:02d},{_STATUSES[i % 4]},"
                    f"{d}T{i % 24:02d}:{i % 60:02d}:00+08:00\r\n"
                )
            f.write("".join(lines).encode(encoding))
    return path


_STATUSES = ("placed", "shipped", "cancelled", "returned")
