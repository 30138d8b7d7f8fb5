"""What one business date of the simulated channel looks like, entity by entity.

Each function draws from sub-streams keyed by ``(seed, entity, day, …)`` so that a
day is the same however the range around it was chosen.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from qudao_demo import vocab
from qudao_demo.world import DAY, HOUR, RETENTION_DAYS, Partner, World

Row = list[object]
#: order lines waiting to be resent: due ordinal → (line fields …, new status, offset style)
Pending = dict[int, list[tuple]]

MAX_RESEND_DAYS = 7
_MEAN_WEIGHT = 6.8 / 6  # mean of the partner weights drawn in world._chain
_MEAN_LINES_PER_ORDER = 1.58


@lru_cache(maxsize=4096)
def iso_date(day: int) -> str:
    return date.fromordinal(day).isoformat()


def fmt_ts(ts: int, offset: bool) -> str:
    """ISO 8601 local time, with ``+08:00`` or without (meaning Asia/Shanghai)."""
    d, s = divmod(ts, DAY)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{iso_date(d)}T{h:02d}:{m:02d}:{sec:02d}{'+08:00' if offset else ''}"


def crm_encoding(day: int) -> str:
    """CRM export encoding of a day: one GB18030 and one BOM day in every seven."""
    return {0: "gb18030", 4: "utf-8-sig"}.get(day % 7, "utf-8")


def dealer_xlsx(day: int) -> bool:
    """Dealers upload spreadsheets one day in seven, CSV otherwise."""
    return day % 7 == 2


def calls_gzip(day: int) -> bool:
    return day % 3 != 0


def crm_offset(day: int) -> bool:
    """Whether the CRM writes ``+08:00`` that day (otherwise naive local times)."""
    return day % 3 != 1


@dataclass
class DayState:
    """The partner roster of one day and the views the other entities need."""

    day: int
    #: (partner, status, parent id, manager index, updated_at ts) in slot order
    rows: list[tuple[Partner, str, str, int, int]] = field(default_factory=list)
    active_dealers: list[Partner] = field(default_factory=list)
    reporting_dealers: list[Partner] = field(default_factory=list)
    children: dict[str, list[Partner]] = field(default_factory=dict)  # dealer → ordering agents
    portfolio: list[list[str]] = field(default_factory=list)  # manager index → active partners
    signed_today: list[str] = field(default_factory=list)
    active: list[Partner] = field(default_factory=list)


def _visible(gens: list[Partner], day: int) -> Iterator[tuple[Partner, bool]]:
    """The generations of a slot in the CRM on ``day`` and whether each is the latest."""
    signed = [p for p in gens if p.signed is not None and p.signed <= day]
    for i, p in enumerate(signed):
        latest = i == len(signed) - 1
        if latest or p.terminated is None or day - p.terminated <= RETENTION_DAYS:
            yield p, latest


def day_state(world: World, day: int) -> DayState:
    """Roll the world to ``day``: statuses, parents, managers, ordering agents."""
    st = DayState(day, portfolio=[[] for _ in world.managers])
    dealer_of_slot: list[Partner | None] = []
    mgr_cache: dict[int, int] = {}

    def manager(p: Partner) -> tuple[int, int]:
        m = mgr_cache.get(p.manager)
        if m is None:
            m = mgr_cache[p.manager] = world.manager_at(p.manager, day)
        upd = p.updated_at(day)
        if m != p.manager:
            moved = world.managers[p.manager].left * DAY + 10 * HOUR  # type: ignore[operator]
            upd = max(upd, moved)
        return m, upd

    def add(p: Partner, parent: str) -> str:
        status = p.status(day)
        m, upd = manager(p)
        st.rows.append((p, status, parent, m, upd))
        if p.signed == day:
            st.signed_today.append(p.pid)
        if status == "active":
            st.portfolio[m].append(p.pid)
            st.active.append(p)
        return status

    for gens in world.dealer_slots:
        latest_p = None
        for p, latest in _visible(gens, day):
            status = add(p, "")
            if status != "terminated":
                st.reporting_dealers.append(p)
            if status == "active":
                st.active_dealers.append(p)
            if latest:
                latest_p = p
        dealer_of_slot.append(latest_p)
    for gens in world.agent_slots:
        for p, _ in _visible(gens, day):
            parent = dealer_of_slot[p.parent_slot(day)]
            assert parent is not None  # agents sign after their dealers (world._chain)
            status = add(p, parent.pid)
            if status == "active" and p.profile != "paper" and (p.lapse is None or p.lapse > day):
                st.children.setdefault(parent.pid, []).append(p)
    return st


# --- CRM snapshots ---------------------------------------------------------------------------


def partner_rows(world: World, st: DayState) -> Iterator[Row]:
    off = crm_offset(st.day)
    for p, status, parent, m, upd in st.rows:
        yield [
            p.pid,
            p.name,
            p.tier,
            parent,
            p.region_code,
            p.industry,
            status,
            iso_date(p.signed),  # type: ignore[arg-type]
            iso_date(p.terminated) if status == "terminated" else "",  # type: ignore[arg-type]
            world.managers[m].mid,
            p.phone,
            fmt_ts(upd, off),
        ]


def manager_rows(world: World, day: int) -> Iterator[Row]:
    off = crm_offset(day)
    for man in world.managers:
        if man.hired > day:
            continue
        left = man.left is not None and man.left <= day
        touched = man.touched if man.touched <= (day + 1) * DAY - 1 else man.hired * DAY + 9 * HOUR
        if man.left is not None and not left:
            touched = man.hired * DAY + 9 * HOUR
        yield [man.mid, man.name, man.city_code, iso_date(man.hired), "left" if left else "active",
               fmt_ts(touched, off)]  # fmt: skip


def product_rows(world: World, day: int) -> Iterator[Row]:
    off = crm_offset(day)
    for p in world.products:
        yield [p.sku, p.name, p.category, p.unit, f"{p.list_price(day):.2f}", fmt_ts(p.updated_at(day), off)]


# --- filings ---------------------------------------------------------------------------------


def filing_index(world: World, first: int, last: int) -> dict[int, list[tuple]]:
    """Every filing state change falling on a day in ``[first, last]``, per day, in time order."""
    index: dict[int, list[tuple]] = {}
    for slots in (world.dealer_slots, world.agent_slots):
        for gens in slots:
            for p in gens:
                for f in p.filings:
                    events = [(f.submitted, "submitted"), (f.decided, f.outcome)]
                    if f.filed is not None:
                        events.append((f.filed, "filed"))
                    for ts, state in events:
                        if first <= ts // DAY <= last:
                            index.setdefault(ts // DAY, []).append((ts, f.filing_id, state, f))
    for events in index.values():
        events.sort(key=lambda e: (e[0], e[1], e[2]))
    return index


def filing_rows(index: dict[int, list[tuple]], day: int) -> Iterator[Row]:
    off = crm_offset(day)
    for ts, _, state, f in index.get(day, []):
        approved = state in ("approved", "filed")
        reason = f"{f.reason}；{f.note}" if state == "rejected" else f.reason
        yield [
            f.filing_id,
            f.partner_id,
            f.kind,
            state,
            fmt_ts(f.submitted, off),
            fmt_ts(f.decided, off) if approved else "",
            f.approver if approved else "",
            reason,
            fmt_ts(ts, off),
        ]


# --- visits ----------------------------------------------------------------------------------


def visit_rows(world: World, st: DayState) -> list[Row]:
    """The visits logged on ``st.day``: each manager's week is planned once, per ISO week."""
    day, seed, off = st.day, world.seed, crm_offset(st.day)
    monday = day - date.fromordinal(day).weekday()
    out: list[Row] = []
    for m, man in enumerate(world.managers):
        portfolio = st.portfolio[m]
        if man.hired > day or (man.left is not None and man.left <= day) or not portfolio:
            continue
        wrng = random.Random(f"{seed}:visits:{m}:{monday}")
        k = wrng.randint(3, 6) if wrng.random() < man.propensity else wrng.randint(0, 2)

        def weekday(r: random.Random) -> int:
            return 5 if r.random() < 0.08 else r.randrange(5)

        plan = [("inspection", weekday(wrng), (i + wrng.random()) / k) for i in range(k)]
        for _ in range(wrng.randint(0, 3)):
            plan.append((wrng.choice(("training", "promotion", "other")), weekday(wrng), wrng.random()))
        drng = random.Random(f"{seed}:visit-detail:{m}:{day}")
        for j, (vtype, wd, u) in enumerate(plan):
            if monday + wd != day:
                continue
            pid = portfolio[min(len(portfolio) - 1, int(u * len(portfolio)))]
            start = day * DAY + drng.randint(9 * HOUR, 17 * HOUR)
            inspection = vtype == "inspection"
            minutes = drng.randint(20, 150) if inspection else drng.randint(30, 240)
            issues = drng.choices((0, 1, 2, 3), (0.55, 0.25, 0.15, 0.05))[0] if inspection else 0
            logged = min(start + minutes * 60 + drng.randint(0, 4 * HOUR), (day + 1) * DAY - 1)
            out.append([
                f"V{iso_date(day).replace('-', '')}{man.mid}{j:02d}", man.mid, pid, vtype, fmt_ts(start, off),
                minutes, issues, drng.choice(vocab.VISIT_NOTES[vtype]), fmt_ts(logged, off),
            ])  # fmt: skip
    return out


def visit_corrections(world: World, day: int, previous: list[Row]) -> list[Row]:
    """Late corrections (补录) of some of the previous day's visits, resent with a newer updated_at."""
    rng = random.Random(f"{world.seed}:visit-fix:{day}")
    out = []
    for row in previous:
        if rng.random() < 0.08:
            fixed = list(row)
            fixed[6] = int(fixed[6]) + 1  # type: ignore[call-overload]
            fixed[7] = f"{fixed[7]}（补录：{rng.choice(vocab.VISIT_NOTES['inspection'])}）"
            fixed[8] = fmt_ts(day * DAY + rng.randint(8 * HOUR, 11 * HOUR), crm_offset(day))
            out.append(fixed)
    return out


# --- orders ----------------------------------------------------------------------------------


def order_lines(
    world: World, st: DayState, pending: Pending, write: Callable[[Row], None] | None
) -> tuple[int, dict[str, None]]:
    """Emit the day's order lines (resends first, then new lines) through ``write``.

    Lines that will later be shipped, cancelled or returned are queued in ``pending``.
    Returns the number of lines and the partners on the day's new (real) lines.
    """
    day, seed = st.day, world.seed
    ymd = iso_date(day).replace("-", "")
    odate = iso_date(day)
    n = 0
    developed: dict[str, None] = {}
    rrng = random.Random(f"{seed}:resend:{day}")
    for oid, line, od, seller, buyer, sku, qty, price, status, off in pending.pop(day, []):
        if write:
            ts = fmt_ts(day * DAY + rrng.randint(8 * HOUR, 20 * HOUR), off)
            write([oid, line, od, seller, buyer, sku, qty, price, status, ts])
        n += 1
    products = world.products
    prices = [p.list_price(day) for p in products]
    wd = date.fromordinal(day).weekday()
    dow = 0.6 if wd == 6 else 0.8 if wd == 5 else 1.1
    per_order = world.scale.lines_per_dealer_day * dow / _MEAN_WEIGHT / _MEAN_LINES_PER_ORDER
    for dealer in st.active_dealers:
        rng = random.Random(f"{seed}:orders:{day}:{dealer.pid}")
        rand, randint, expo = rng.random, rng.randint, rng.expovariate
        book = world.books[dealer.slot]
        skus, cum = book.skus, book.cum_weights
        total = cum[-1]
        kids = st.children.get(dealer.pid, [])
        x = per_order * dealer.weight * rng.uniform(0.7, 1.3)
        n_orders = int(x) + (rand() < x - int(x))
        off = dealer.offset_style
        for o in range(n_orders):
            r = rand()
            seller, buyer = dealer.pid, ""
            if kids and r < 0.45:
                buyer = kids[int(rand() * len(kids))].pid
            elif kids and r < 0.55:
                seller = kids[int(rand() * len(kids))].pid
            oid = f"{seller}-{ymd}-{o + 1:04d}"
            created = fmt_ts(day * DAY + randint(8 * HOUR, 21 * HOUR), off)
            developed[seller] = None
            if buyer:
                developed[buyer] = None
            for line in range(1, 2 + min(5, int(expo(1.0)))):
                si = skus[bisect_right(cum, rand() * total)]
                prod = products[si]
                if buyer:
                    qty = max(1, int(prod.qty_agent * (0.5 + rand())))
                    price = f"{prices[si] * (0.78 + 0.12 * rand()):.2f}"
                else:
                    qty = 1 + int(rand() * min(prod.qty_agent / 4, 5))
                    price = f"{prices[si] * (0.95 + 0.08 * rand()):.2f}"
                fate = rand()
                status = "shipped"
                if fate < 0.10:
                    status = "placed"
                    if fate < 0.085:
                        later = (day + randint(1, 2), "shipped")
                    else:
                        later = (day + randint(1, 3), "cancelled")
                elif fate > 0.985:
                    later = (day + randint(2, MAX_RESEND_DAYS), "returned")
                else:
                    later = None
                sku = prod.sku
                if write:
                    write([oid, line, odate, seller, buyer, sku, qty, price, status, created])
                n += 1
                if later:
                    pending.setdefault(later[0], []).append(
                        (oid, line, odate, seller, buyer, sku, qty, price, later[1], off)
                    )
    return n, developed


# --- inventory -------------------------------------------------------------------------------

_PROFILE_DAYS = {"healthy": (40.0, 10.0), "overstock": (130.0, 70.0), "lean": (8.0, -4.0)}


def inventory_rows(world: World, st: DayState) -> Iterator[Row]:
    """End-of-day stock of each reporting dealer for the SKUs it reports that day."""
    day, snap = st.day, iso_date(st.day)
    products = world.products
    base = world.scale.lines_per_dealer_day * 0.9 / _MEAN_WEIGHT
    for dealer in st.reporting_dealers:
        rng = random.Random(f"{world.seed}:inv:{day}:{dealer.pid}")
        if rng.random() < 0.03:  # the dealer did not report that day
            continue
        book = world.books[dealer.slot]
        peak, trough = _PROFILE_DAYS[book.stock_profile]
        total, prev = book.cum_weights[-1], 0.0
        for si, cw in zip(book.skus, book.cum_weights, strict=True):
            w, prev = cw - prev, cw
            if rng.random() > book.report_rate:
                continue
            prod = products[si]
            daily = base * dealer.weight * (w / total) * prod.mean_line_qty()
            if daily <= 0:  # a product that does not move: a constant heap
                on_hand, transit = 10 + (si * 7 + dealer.slot * 13) % 150, 0
            else:
                pos = ((day + book.phase + si) % book.cycle) / book.cycle
                days_cover = peak - pos * (peak - trough)
                on_hand = max(0, round(daily * days_cover * rng.uniform(0.9, 1.1)))
                transit = round(daily * book.cycle) if pos > 0.75 else 0
            yield [snap, dealer.pid, prod.sku, on_hand, None if rng.random() < 0.05 else transit]


# --- calls -----------------------------------------------------------------------------------


def call_rows(world: World, st: DayState, developed: dict[str, None]) -> list[dict[str, object]]:
    """The call center's day: call-backs to partners developed that day, and other calls."""
    day, seed = st.day, world.seed
    rng = random.Random(f"{seed}:calls:{day}")
    phones = {p.pid: p.phone for p, *_ in st.rows}
    targets = list(dict.fromkeys([*st.signed_today, *developed]))
    # some days the call center keeps up with the 15 % rule, some days it does not
    rate = rng.uniform(0.03, 0.10) if day % 4 == 0 else rng.uniform(0.24, 0.36)
    chosen = rng.sample(targets, min(len(targets), round(rate * len(targets))))
    agents = [f"KF{i + 1:03d}" for i in range(world.scale.call_agents)]
    raw: list[tuple[int, dict[str, object]]] = []

    def call(direction: str, kind: str, pid: str | None, phone: str, start: int, connect_p: float) -> None:
        r = rng.random()
        outcome = "connected" if r < connect_p else rng.choice(("no_answer", "no_answer", "busy", "failed"))
        if outcome == "connected":
            duration = rng.randint(40, 900)
            ended: int | None = start + duration
            sat = (
                rng.choices((1, 2, 3, 4, 5), (0.04, 0.06, 0.15, 0.35, 0.4))[0] if rng.random() < 0.6 else None
            )
        else:
            duration, sat = 0, None
            ended = start + rng.randint(5, 45) if rng.random() < 0.5 else None
        raw.append((start, {
            "call_id": "", "direction": direction, "call_type": kind, "partner_id": pid,
            "customer_phone": phone, "agent_id": agents[int(rng.random() * len(agents))],
            "started_at": fmt_ts(start, True), "ended_at": fmt_ts(ended, True) if ended else None,
            "duration_seconds": duration, "outcome": outcome, "satisfaction": sat,
        }))  # fmt: skip

    for pid in chosen:
        start = day * DAY + rng.randint(9 * HOUR, 17 * HOUR)
        call("outbound", "callback", pid, phones.get(pid, vocab.phone(rng)), start, 0.8)
        if raw[-1][1]["outcome"] != "connected" and rng.random() < 0.5:  # tried again later that day
            call("outbound", "callback", pid, phones.get(pid, vocab.phone(rng)), start + 2 * HOUR, 0.7)
    n_other = round(world.scale.other_calls_per_day * rng.uniform(0.8, 1.2))
    active = st.active
    for _ in range(n_other):
        kind = rng.choices(("sales", "support", "complaint"), (0.35, 0.5, 0.15))[0]
        start = day * DAY + rng.randint(8 * HOUR, 21 * HOUR)
        if active and rng.random() < 0.65:
            p = active[int(rng.random() * len(active))]
            pid, phone = p.pid, p.phone
        else:
            pid, phone = None, vocab.phone(rng)
        direction = "outbound" if kind == "sales" and rng.random() < 0.7 else "inbound"
        call(direction, kind, pid, phone, start, 0.85 if direction == "inbound" else 0.6)
    raw.sort(key=lambda c: c[0])
    ymd = iso_date(day).replace("-", "")
    for i, (_, c) in enumerate(raw):
        c["call_id"] = f"C{ymd}{i + 1:06d}"
    return [c for _, c in raw]
