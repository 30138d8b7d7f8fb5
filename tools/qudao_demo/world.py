"""The simulated channel: managers, products and partners with their whole history.

Everything here is a pure function of ``(seed, scale)``: each manager, product and
partner slot draws from its own ``random.Random`` sub-stream, so the world a range
sees does not depend on where the range starts or ends (only on how far the
history has to be unrolled). A partner *slot* is a place in the network (a
territory seat): its successive *generations* are the partners that held it —
signed after a ``new`` filing, changed by ``change`` filings, ended by a
``termination`` filing, replaced after a gap.

Times are integers: dates as proleptic ordinals, timestamps as
``ordinal * 86400 + seconds`` in Asia/Shanghai local time.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate

from qudao_demo import vocab
from qudao_demo.regions import read_seed

DAY = 86_400
HOUR = 3_600
#: the day the simulated network is anchored to; history is unrolled on both sides of it
EPOCH = date(2024, 1, 1).toordinal()
#: how long a terminated partner stays in the CRM snapshot before it is archived
RETENTION_DAYS = 365


@dataclass(frozen=True)
class Scale:
    """Sizes of one scale (``small``, ``medium``, ``large``)."""

    name: str
    dealer_slots: int
    agent_slots: int
    managers: int
    products: int
    lines_per_dealer_day: float
    skus_per_dealer: int
    other_calls_per_day: int
    call_agents: int
    #: on spreadsheet days, also deliver orders as XLSX (off when a day would not fit a sheet)
    orders_xlsx: bool


SCALES: dict[str, Scale] = {
    "small": Scale("small", 40, 230, 10, 60, 8.0, 20, 40, 6, True),
    "medium": Scale("medium", 600, 4000, 120, 300, 85.0, 40, 1_500, 40, True),
    "large": Scale("large", 6000, 40_000, 1000, 1000, 170.0, 40, 15_000, 300, False),
}


@dataclass(slots=True)
class Filing:
    """One channel filing (渠道报备) and its whole life."""

    filing_id: str
    partner_id: str
    kind: str  # new / change / termination
    submitted: int  # ts
    outcome: str  # approved / rejected
    decided: int  # ts of approval or rejection (may lie far after submission: pending)
    filed: int | None  # ts the channel department recorded it (approved only)
    approver: str
    reason: str  # why it was filed
    note: str = ""  # the reviewer's note when rejected


@dataclass(slots=True)
class Partner:
    """One partner (one generation of a slot)."""

    pid: str
    tier: int
    slot: int
    name: str
    industry: str
    region_code: str
    phone: str
    manager: int  # index into World.managers (before any reassignment)
    signed: int | None  # ordinal; None: its `new` filing was rejected
    terminated: int | None = None  # ordinal
    parents: list[tuple[int, int]] = field(default_factory=list)  # (effective ordinal, dealer slot)
    suspended: tuple[int, int] | None = None  # [from, to) ordinals
    touches: list[int] = field(default_factory=list)  # sorted ts of CRM edits
    profile: str = "regular"  # agents: regular / paper (never orders) / lapse (stops ordering)
    lapse: int | None = None  # ordinal from which a `lapse` agent no longer orders
    weight: float = 1.0  # relative order volume
    filings: list[Filing] = field(default_factory=list)
    offset_style: bool = True  # dealer systems: timestamps with +08:00 or naive

    def updated_at(self, day: int) -> int:
        """Timestamp of the last CRM edit on or before ``day`` (end of day)."""
        i = bisect_right(self.touches, (day + 1) * DAY - 1)
        return self.touches[i - 1] if i else self.touches[0]

    def parent_slot(self, day: int) -> int:
        slot = self.parents[0][1]
        for eff, s in self.parents:
            if eff > day:
                break
            slot = s
        return slot

    def status(self, day: int) -> str:
        if self.terminated is not None and self.terminated <= day:
            return "terminated"
        if self.suspended and self.suspended[0] <= day < self.suspended[1]:
            return "suspended"
        return "active"


@dataclass(slots=True)
class Manager:
    mid: str
    name: str
    city_code: str
    hired: int
    left: int | None
    successor: int
    propensity: float  # probability of a week meeting the three-inspections rule
    touched: int  # ts of the last edit before leaving


@dataclass(slots=True)
class Product:
    sku: str
    name: str
    category: str
    unit: str
    base_price: float
    period: int
    phase: int
    popularity: float  # 0: never sells (no movement)
    qty_agent: int  # typical quantity an agent orders

    def price_epoch(self, day: int) -> int:
        return (day + self.phase) // self.period

    def list_price(self, day: int) -> float:
        step = (self.price_epoch(day) % 4) - 1  # cycles -3 %, 0, +3 %, +6 %
        return round(self.base_price * (1 + 0.03 * step), 2)

    def updated_at(self, day: int) -> int:
        changed = self.price_epoch(day) * self.period - self.phase
        return changed * DAY + 9 * HOUR + (self.phase * 37) % 3600

    def mean_line_qty(self) -> float:
        retail = 1 + min(self.qty_agent / 4, 5) / 2
        return 0.5 * self.qty_agent + 0.5 * retail


@dataclass(slots=True)
class DealerBook:
    """What a dealer slot carries and how its stock behaves."""

    skus: list[int]  # product indices it reports on
    cum_weights: list[float]  # for drawing order lines (popularity)
    stock_profile: str  # healthy / overstock / lean
    cycle: int
    phase: int
    report_rate: float


@dataclass
class World:
    seed: int
    scale: Scale
    horizon: int
    managers: list[Manager]
    products: list[Product]
    dealer_slots: list[list[Partner]]
    agent_slots: list[list[Partner]]
    books: list[DealerBook]
    manager_dealers: list[list[int]]

    def manager_at(self, m: int, day: int) -> int:
        """The manager responsible on ``day`` for a portfolio first given to ``m``."""
        for _ in range(len(self.managers)):
            left = self.managers[m].left
            if left is None or left > day:
                return m
            m = self.managers[m].successor
        return m


def _worktime(rng: random.Random, day: int) -> int:
    return day * DAY + rng.randint(8 * HOUR + 1800, 18 * HOUR)


def _decide(rng: random.Random, submitted: int, reject_p: float) -> tuple[str, int]:
    """Outcome and decision time: quick (< 72 h), slow (> 72 h), stuck (10–40 days) or rejected."""
    if rng.random() < reject_p:
        return "rejected", submitted + rng.randint(4 * HOUR, 120 * HOUR)
    r = rng.random()
    if r < 0.66:
        hours = rng.uniform(1, 60)
    elif r < 0.84:
        hours = rng.uniform(74, 220)
    else:
        hours = rng.uniform(240, 960)
    return "approved", submitted + int(hours * HOUR)


class _Places:
    """Counties of the region seed, grouped for placing managers and partners."""

    def __init__(self) -> None:
        rows = read_seed()
        self.name = {r["region_code"]: r["county_name"] for r in rows}
        self.target: dict[str, list[str]] = {}
        self.other: dict[str, list[str]] = {}
        self.province_other: dict[str, list[str]] = {}
        self.city_of: dict[str, str] = {}
        for r in rows:
            city = r["city_code"]
            bucket = self.target if r["is_target"] == "true" else self.other
            bucket.setdefault(city, []).append(r["region_code"])
            if r["is_target"] != "true":
                self.province_other.setdefault(r["province_code"], []).append(r["region_code"])
        self.cities = sorted(c for c, counties in self.target.items() if len(counties) >= 2)

    def county(self, rng: random.Random, city: str) -> str:
        if rng.random() < 0.92 or not (self.other.get(city) or self.province_other.get(city[:2] + "0000")):
            return rng.choice(self.target[city])
        return rng.choice(self.other.get(city) or self.province_other[city[:2] + "0000"])


def _managers(seed: int, scale: Scale, places: _Places) -> list[Manager]:
    cities = list(places.cities)
    random.Random(f"{seed}:cities").shuffle(cities)
    out = []
    n = scale.managers
    for m in range(n):
        rng = random.Random(f"{seed}:manager:{m}")
        hired = EPOCH - rng.randint(60, 8 * 365)
        left = EPOCH + rng.randint(0, 3 * 365) if m > 0 and rng.random() < 0.08 else None
        out.append(
            Manager(
                mid=f"M{m + 1:03d}",
                name=vocab.person_name(rng),
                city_code=cities[m % len(cities)],
                hired=hired,
                left=left,
                successor=(m + 1) % n,
                propensity=rng.choice((0.95, 0.85, 0.7, 0.45, 0.2)),
                touched=(left if left is not None else hired + rng.randint(0, 400)) * DAY + 10 * HOUR,
            )
        )
    return out


def _products(seed: int, scale: Scale) -> list[Product]:
    out = []
    for i in range(scale.products):
        rng = random.Random(f"{seed}:product:{i}")
        category = vocab.INDUSTRIES[i % len(vocab.INDUSTRIES)]
        stem, unit, lo, hi = rng.choice(vocab.PRODUCTS[category])
        base = round(rng.uniform(lo, hi), 2)
        period = rng.randint(60, 200)
        out.append(
            Product(
                sku=f"SKU{i + 1:05d}",
                name=f"{rng.choice(vocab.SERIES)}{stem} {chr(65 + rng.randrange(26))}{rng.randint(1, 99)}",
                category=category,
                unit=unit,
                base_price=base,
                period=period,
                phase=rng.randrange(period),
                popularity=0.0 if rng.random() < 0.07 else rng.paretovariate(1.6),
                qty_agent=max(1, min(40, round(1500 / base))),
            )
        )
    return out


def _chain(
    seed: int,
    tier: int,
    slot: int,
    n_slots: int,
    horizon: int,
    home: dict,
    places: _Places,
    next_parent: list[int],
) -> list[Partner]:
    """Unroll the generations of one slot up to ``horizon`` (see the module docstring)."""
    kind = "dealer" if tier == 1 else "agent"
    srng = random.Random(f"{seed}:{kind}:{slot}")
    initial = tier == 1 or srng.random() < 0.85
    if tier == 1:
        first_signed = EPOCH - srng.randint(3 * 365 + 1, 12 * 365)
    else:
        first_signed = EPOCH - srng.randint(30, 3 * 365)
    next_submit = EPOCH + srng.randint(0, 4 * 365)
    mean_tenure = 10 * 365 if tier == 1 else 3 * 365
    change_rate = (0.3 if tier == 1 else 0.5) / 365
    out: list[Partner] = []
    for g in range(10_000):
        rng = random.Random(f"{seed}:{kind}:{slot}:{g}")
        number = slot + 1 + g * n_slots
        pid = f"D{number:04d}" if tier == 1 else f"A{number:06d}"
        county = places.county(rng, home["city"]) if g == 0 or rng.random() < 0.3 else home["county"]
        home.setdefault("county", county)
        industry = home["industry"] if rng.random() < 0.8 else rng.choice(vocab.INDUSTRIES)
        p = Partner(
            pid=pid,
            tier=tier,
            slot=slot,
            name=vocab.partner_name(rng, places.name[county], industry, tier == 1),
            industry=industry,
            region_code=county,
            phone=vocab.phone(rng),
            manager=home["manager"],
            signed=None,
            weight=rng.choice((0.3, 0.6, 1.0, 1.0, 1.4, 2.5)),
            offset_style=rng.random() < 0.5,
        )
        nf = 1

        def filing(
            kind_: str, submitted: int, reject_p: float, p: Partner = p, rng: random.Random = rng
        ) -> Filing:
            nonlocal nf
            outcome, decided = _decide(rng, submitted, reject_p)
            f = Filing(
                filing_id=f"F{p.pid}-{nf:02d}",
                partner_id=p.pid,
                kind=kind_,
                submitted=submitted,
                outcome=outcome,
                decided=decided,
                filed=decided + rng.randint(2 * HOUR, 30 * HOUR) if outcome == "approved" else None,
                approver=f"RD{int(p.region_code[:2]) % 8 + 1:02d}",
                reason=rng.choice(vocab.FILING_REASONS[kind_]),
                note=rng.choice(vocab.REJECT_NOTES) if outcome == "rejected" else "",
            )
            nf += 1
            p.filings.append(f)
            return f

        if initial and g == 0:
            p.signed = first_signed
            sub = _worktime(rng, first_signed - rng.randint(3, 12))
            f = Filing(
                f"F{pid}-01", pid, "new", sub, "approved", sub + 20 * HOUR, sub + 40 * HOUR, "RD01", ""
            )
            f.reason = vocab.FILING_REASONS["new"][1 if tier == 1 else 0]
            p.filings.append(f)
            nf = 2
        else:
            if next_submit > horizon:
                break
            f = filing("new", _worktime(rng, next_submit), 0.12)
            if f.outcome == "rejected":
                out.append(p)
                next_submit = f.decided // DAY + rng.randint(5, 60)
                continue
            p.signed = f.decided // DAY + rng.randint(0, 2)
        signed = p.signed
        p.touches.append(signed * DAY + 10 * HOUR + rng.randrange(3600))
        if tier == 2:
            p.parents.append((signed, home["parent"]))
            r = rng.random()
            if r < 0.15:
                p.profile = "paper"
            elif r < 0.5:
                p.profile = "lapse"
                p.lapse = signed + 7 + int(rng.expovariate(1 / 400))
        end = signed + 30 + int(rng.expovariate(1 / mean_tenure))
        t = signed + 20
        while True:
            t += 1 + int(rng.expovariate(change_rate))
            if t >= end:
                break
            parent_change = tier == 2 and rng.random() < 0.5
            f = filing("change", _worktime(rng, t), 0.1)
            reasons = vocab.FILING_REASONS["change"]
            f.reason = reasons[0] if parent_change else rng.choice(reasons[1:])
            if f.outcome != "approved":
                continue
            p.touches.append(f.decided)
            if parent_change:
                current = p.parents[-1][1]
                choices = [d for d in next_parent if d != current] or [current]
                p.parents.append((f.decided // DAY, rng.choice(choices)))
        if rng.random() < 0.05:
            s = signed + rng.randint(30, 900)
            p.suspended = (s, s + rng.randint(7, 60))
            p.touches += [s * DAY + 9 * HOUR, p.suspended[1] * DAY + 9 * HOUR]
        edits = signed + int(rng.expovariate(1 / 200))
        while edits < end and edits <= horizon:
            p.touches.append(edits * DAY + 14 * HOUR + rng.randrange(3 * HOUR))
            edits += 30 + int(rng.expovariate(1 / 300))
        out.append(p)
        f = filing("termination", _worktime(rng, end), 0.0)
        p.terminated = f.decided // DAY
        p.touches.append(f.decided)
        p.touches.sort()
        if p.lapse is not None and p.lapse > p.terminated:
            p.lapse = None
        if p.terminated > horizon:
            break
        next_submit = p.terminated + rng.randint(10, 120)
    return out


def _book(seed: int, slot: int, industry: str, scale: Scale, products: list[Product]) -> DealerBook:
    rng = random.Random(f"{seed}:book:{slot}")
    own = [i for i, p in enumerate(products) if p.category == industry]
    others = [i for i, p in enumerate(products) if p.category != industry]
    k = min(scale.skus_per_dealer, len(products))
    n_own = min(len(own), round(k * 0.7))
    skus = sorted(rng.sample(own, n_own) + rng.sample(others, min(len(others), k - n_own)))
    weights = [products[i].popularity for i in skus]
    if not any(weights):
        weights = [1.0] * len(skus)
    return DealerBook(
        skus=skus,
        cum_weights=list(accumulate(weights)),
        stock_profile=rng.choices(("healthy", "overstock", "lean"), (0.6, 0.15, 0.25))[0],
        cycle=rng.randint(7, 21),
        phase=rng.randrange(21),
        report_rate=rng.choice((0.95, 0.9, 0.8, 0.6)),
    )


def build_world(seed: int, scale: Scale, horizon: int) -> World:
    """Draw the world of ``(seed, scale)`` with every history unrolled up to ``horizon``."""
    places = _Places()
    managers = _managers(seed, scale, places)
    products = _products(seed, scale)
    n_m = len(managers)
    manager_dealers: list[list[int]] = [[] for _ in range(n_m)]
    dealer_slots, books = [], []
    for s in range(scale.dealer_slots):
        rng = random.Random(f"{seed}:dealer-home:{s}")
        m = s % n_m
        manager_dealers[m].append(s)
        home = {"city": managers[m].city_code, "manager": m, "industry": rng.choice(vocab.INDUSTRIES)}
        dealer_slots.append(_chain(seed, 1, s, scale.dealer_slots, horizon, home, places, []))
        books.append(_book(seed, s, home["industry"], scale, products))
    agent_slots = []
    for s in range(scale.agent_slots):
        rng = random.Random(f"{seed}:agent-home:{s}")
        parent = rng.randrange(scale.dealer_slots)
        dealer = dealer_slots[parent][0]
        home = {
            "city": managers[dealer.manager].city_code,
            "manager": dealer.manager,
            "industry": dealer.industry,
            "parent": parent,
        }
        agent_slots.append(
            _chain(seed, 2, s, scale.agent_slots, horizon, home, places, manager_dealers[dealer.manager])
        )
    return World(seed, scale, horizon, managers, products, dealer_slots, agent_slots, books, manager_dealers)
