"""What a report says: every table and chart of a period, asked of the metrics layer.

Numbers come only from :class:`qudao.metrics.engine.Metrics` (no second copy of a
formula); the only arithmetic here is the change against the previous period.
Names of dealers, managers and provinces are labels read from the published
dimensions. Thresholds drawn as lines (3 inspections, 15 % call-backs) are the dbt
vars the marts use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
import yaml

from qudao.config import settings
from qudao.constants import PUBLISHED_SCHEMA
from qudao.metrics.engine import Metrics
from qudao.reports.periods import Period

BANDS = (
    ("stockout", "缺货"),
    ("no_movement", "无动销"),
    ("low", "偏低"),
    ("healthy", "健康"),
    ("overstock", "积压"),
)


@dataclass(frozen=True)
class Column:
    title: str
    kind: str = "text"  # text | int | num | rate | pp (change of a rate) | delta (change of a count) | date


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    #: per row, the kind of its value columns (a table of different metrics); None: the columns' kinds
    row_kinds: list[str] | None = None

    def kind(self, row: int, col: int) -> str:
        """How the cell is formatted: its column's kind, or its row's for a table of metrics."""
        if self.row_kinds is None or col == 0:
            return self.columns[col].kind
        kind = self.row_kinds[row]
        if self.columns[col].kind == "change":
            return "pp" if kind == "rate" else "delta"
        return kind


@dataclass
class Chart:
    key: str
    kind: str  # line | bar | hbar | stack | funnel
    title: str
    x: list[Any]
    series: list[tuple[str, list[Any]]]
    mark_line: tuple[str, float] | None = None
    percent: bool = False


@dataclass
class Section:
    key: str
    title: str
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    period: Period
    as_of: date | None  # the last business date of the period in the published marts
    sections: list[Section]

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]


def dbt_var(name: str) -> Any:
    """A threshold of the marts (``dbt_project.yml`` vars), the one place it is set."""
    project = yaml.safe_load((settings().dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"][name]


def _change(now: Any, before: Any) -> float | None:
    if now is None or before is None:
        return None
    return float(now) - float(before)


class _Asker:
    """The period's questions to the metrics layer."""

    def __init__(self, layer: Metrics, period: Period) -> None:
        self.layer, self.period, self.prev = layer, period, period.previous()
        self.grain = f"metric_time__{period.kind}"

    def rows(self, metrics: Sequence[str], group_by: Sequence[str] = (), *, both: bool = False) -> list[dict]:
        """Records over the period (``both``: the previous period too), ordered by the group-bys."""
        start = self.prev.start if both else self.period.start
        return self.layer.query(list(metrics), list(group_by), start=start, end=self.period.end).records()

    def by_period(self, metrics: Sequence[str], keys: Sequence[str] = ()) -> tuple[dict, dict]:
        """{key tuple: record} of this period and of the previous one."""
        now: dict = {}
        before: dict = {}
        for r in self.rows(metrics, [self.grain, *keys], both=True):
            target = (
                now
                if r[self.grain] == self.period.start
                else before
                if r[self.grain] == self.prev.start
                else None
            )
            if target is not None:
                target[tuple(r[k] for k in keys)] = r
        return now, before


def _labels(url: str) -> dict[str, dict[str, str]]:
    with psycopg.connect(url) as c:
        c.read_only = True
        s = PUBLISHED_SCHEMA
        return {
            "partner": dict(
                c.execute(f"select partner_id, partner_name from {s}.dim_partner where is_current")
            ),
            "manager": dict(
                c.execute(f"select manager_id, manager_name from {s}.dim_manager where is_current")
            ),
            "province": dict(c.execute(f"select distinct province_code, province_name from {s}.dim_region")),
        }


def build_report(layer: Metrics, period: Period) -> Report:
    """Every section of the report for ``period``."""
    ask = _Asker(layer, period)
    names = _labels(layer.url)
    days = ask.rows(["callback_days"], ["metric_time__day"])
    as_of = max((r["metric_time__day"] for r in days), default=None)
    sections = [
        _overview(ask),
        _coverage(ask),
        _agents(ask, names),
        _inspections(ask, names),
        _callbacks(ask),
        _inventory(ask),
        _filings(ask, names),
    ]
    return Report(period, as_of, sections)


OVERVIEW = (
    ("effective_coverage_rate", "rate"),
    ("nominal_coverage_rate", "rate"),
    ("active_agent_rate", "rate"),
    ("newly_active_agents", "int"),
    ("lapsed_agents", "int"),
    ("inspection_compliance_rate", "rate"),
    ("portfolio_inspected_rate", "rate"),
    ("callback_rate", "rate"),
    ("share_healthy", "rate"),
    ("days_of_supply", "num"),
    ("filings_pending_over_72h", "int"),
    ("median_hours_to_approve", "num"),
)


def _overview(ask: _Asker) -> Section:
    labels = {m.name: m.label for m in ask.layer.list(with_dimensions=False)}
    rows = []
    for metric, kind in OVERVIEW:
        now, before = ask.by_period([metric])
        a, b = now.get((), {}).get(metric), before.get((), {}).get(metric)
        rows.append([labels[metric], a, b, _change(a, b), kind])
    columns = [Column("指标"), Column("本期"), Column("上期"), Column(ask.period.change_name, "change")]
    table = Table("overview", "核心指标", columns, [r[:4] for r in rows], [r[4] for r in rows])
    note = "率为期末（快照类指标取本期最后一个营业日）数值；变化为本期减上期，率的变化以百分点计。"
    return Section("overview", "一、核心指标", tables=[table], note=note)


def _coverage(ask: _Asker) -> Section:
    daily = ask.rows(["effective_coverage_rate"], ["metric_time__day", "region__province_name"])
    dates = sorted({r["metric_time__day"] for r in daily})
    provinces = sorted({r["region__province_name"] for r in daily})
    value = {(r["metric_time__day"], r["region__province_name"]): r["effective_coverage_rate"] for r in daily}
    chart = Chart(
        "coverage",
        "line",
        "各省有效覆盖率（逐日）",
        dates,
        [(p, [value.get((d, p)) for d in dates]) for p in provinces],
        percent=True,
    )
    metrics = ["target_counties", "counties_covered_effective", "effective_coverage_rate"]
    now, before = ask.by_period(metrics, ["region__province_name"])
    rows = []
    for (province,), r in sorted(now.items()):
        prev = before.get((province,), {}).get("effective_coverage_rate")
        rate = r["effective_coverage_rate"]
        rows.append(
            [province, r["target_counties"], r["counties_covered_effective"], rate, prev, _change(rate, prev)]
        )
    summary = Table(
        "coverage",
        "有效覆盖率（省份）",
        [
            Column("省份"),
            Column("目标区县数", "int"),
            Column("有效覆盖区县数", "int"),
            Column("有效覆盖率", "rate"),
            Column("上期有效覆盖率", "rate"),
            Column(ask.period.change_name, "pp"),
        ],
        rows,
    )
    series = Table(
        "coverage_daily",
        "有效覆盖率（逐日）",
        [Column("日期", "date"), *(Column(p, "rate") for p in provinces)],
        [[d, *(value.get((d, p)) for p in provinces)] for d in dates],
    )
    return Section("coverage", "二、市场有效覆盖", [chart], [summary, series])


def _agents(ask: _Asker, names: dict[str, dict[str, str]]) -> Section:
    metrics = ["agents_signed", "agents_active", "active_agent_rate", "newly_active_agents", "lapsed_agents"]
    now, before = ask.by_period(metrics, ["dealer"])
    ranked = sorted(
        ((k[0], r) for k, r in now.items() if r["active_agent_rate"] is not None),
        key=lambda kr: (-kr[1]["active_agent_rate"], kr[0]),
    )
    top, bottom = ranked[:10], sorted(ranked, key=lambda kr: (kr[1]["active_agent_rate"], kr[0]))[:10]
    charts, rows = [], []
    for group, picked in (("前10", top), ("后10", bottom)):
        label = [names["partner"].get(d, d) for d, _ in picked]
        charts.append(
            Chart(
                f"agents_{'top' if group == '前10' else 'bottom'}",
                "hbar",
                f"二级代理活跃率 {group} 经销商",
                label,
                [("活跃率", [r["active_agent_rate"] for _, r in picked])],
                percent=True,
            )
        )
        for d, r in picked:
            prev = before.get((d,), {}).get("active_agent_rate")
            rate = r["active_agent_rate"]
            rows.append(
                [
                    group,
                    d,
                    names["partner"].get(d, ""),
                    r["agents_signed"],
                    r["agents_active"],
                    rate,
                    prev,
                    _change(rate, prev),
                    r["newly_active_agents"],
                    r["lapsed_agents"],
                ]
            )
    table = Table(
        "agents",
        "二级代理活跃率（经销商）",
        [
            Column("分组"),
            Column("经销商编号"),
            Column("经销商"),
            Column("签约代理数", "int"),
            Column("活跃代理数", "int"),
            Column("活跃率", "rate"),
            Column("上期活跃率", "rate"),
            Column(ask.period.change_name, "pp"),
            Column("新增活跃", "int"),
            Column("流失", "int"),
        ],
        rows,
    )
    return Section("agents", "三、二级代理活跃度", charts, [table])


def _inspections(ask: _Asker, names: dict[str, dict[str, str]]) -> Section:
    required = int(dbt_var("required_inspections"))
    weekly = ask.rows(["partners_inspected", "inspections"], ["metric_time__week", "manager"], both=True)
    weeks = sorted({r["metric_time__week"] for r in weekly if r["metric_time__week"] >= ask.period.start})
    managers = sorted({r["manager"] for r in weekly})
    value = {(r["metric_time__week"], r["manager"]): r for r in weekly}
    chart = Chart(
        "inspections",
        "bar",
        f"渠道经理每周巡检伙伴数（达标线 {required} 家）",
        [names["manager"].get(m, m) for m in managers],
        [
            (f"{w:%m-%d}周", [value.get((w, m), {}).get("partners_inspected") for m in managers])
            for w in weeks
        ],
        mark_line=(f"{required}家/周", required),
    )
    rows = []
    for w in weeks:
        for m in managers:
            r = value.get((w, m))
            if r is None:
                continue
            prev = value.get((w.fromordinal(w.toordinal() - 7), m), {}).get("partners_inspected")
            n = r["partners_inspected"]
            rows.append(
                [
                    w,
                    m,
                    names["manager"].get(m, ""),
                    r["inspections"],
                    n,
                    "是" if n >= required else "否",
                    prev,
                    _change(n, prev),
                ]
            )
    table = Table(
        "inspections",
        "渠道经理巡检（周）",
        [
            Column("周一", "date"),
            Column("经理编号"),
            Column("经理"),
            Column("巡检次数", "int"),
            Column("巡检伙伴数", "int"),
            Column(f"达标（≥{required}）"),
            Column("上周巡检伙伴数", "int"),
            Column("环比（上周）", "delta"),
        ],
        rows,
    )
    return Section("inspections", "四、渠道经理巡检", [chart], [table])


def _callbacks(ask: _Asker) -> Section:
    line = float(dbt_var("callback_min_rate"))
    daily = ask.rows(
        ["partners_developed", "partners_called_back", "callback_rate", "callback_days_compliant"],
        ["metric_time__day"],
    )
    dates = [r["metric_time__day"] for r in daily]
    chart = Chart(
        "callbacks",
        "line",
        f"每日回访率（要求 ≥ {line:.0%}）",
        dates,
        [("回访率", [r["callback_rate"] for r in daily])],
        mark_line=(f"{line:.0%}", line),
        percent=True,
    )
    rows = [
        [
            r["metric_time__day"],
            r["partners_developed"],
            r["partners_called_back"],
            r["callback_rate"],
            "是" if r["callback_days_compliant"] else "否",
        ]
        for r in daily
    ]
    table = Table(
        "callbacks",
        "每日回访率",
        [
            Column("日期", "date"),
            Column("当日发展伙伴数", "int"),
            Column("当日回访伙伴数", "int"),
            Column("回访率", "rate"),
            Column("达标"),
        ],
        rows,
    )
    return Section("callbacks", "五、新发展伙伴回访", [chart], [table])


def _inventory(ask: _Asker) -> Section:
    counts = [f"items_{b}" for b, _ in BANDS]
    now, before = ask.by_period(
        [*counts, "inventory_items", "share_healthy"], ["partner__region__province_name"]
    )
    provinces = sorted(k[0] for k in now)
    chart = Chart(
        "inventory",
        "stack",
        "各省库存健康度分布（期末，SKU数）",
        provinces,
        [(zh, [now[(p,)][f"items_{b}"] for p in provinces]) for b, zh in BANDS],
    )
    rows = []
    for p in provinces:
        r = now[(p,)]
        prev = before.get((p,), {}).get("share_healthy")
        rows.append(
            [
                p,
                *(r[c] for c in counts),
                r["inventory_items"],
                r["share_healthy"],
                prev,
                _change(r["share_healthy"], prev),
            ]
        )
    table = Table(
        "inventory",
        "库存健康度（省份）",
        [
            Column("省份"),
            *(Column(zh, "int") for _, zh in BANDS),
            Column("上报SKU数", "int"),
            Column("健康占比", "rate"),
            Column("上期健康占比", "rate"),
            Column(ask.period.change_name, "pp"),
        ],
        rows,
    )
    return Section("inventory", "六、经销商库存健康度", [chart], [table])


def _filings(ask: _Asker, names: dict[str, dict[str, str]]) -> Section:
    stages = [("filings_total", "提交"), ("filings_passed", "通过审批"), ("filings_filed", "已备案")]
    now, _ = ask.by_period([m for m, _ in stages])
    end = now.get((), {})
    chart = Chart(
        "filings",
        "funnel",
        "渠道报备漏斗（期末累计）",
        [zh for _, zh in stages],
        [("报备", [end.get(m) for m, _ in stages])],
    )
    metrics = [
        "filings_total",
        "filings_submitted",
        "filings_pending_over_72h",
        "filings_approved",
        "filings_rejected",
        "filings_filed",
    ]
    keys = ["funnel_row__province_code", "funnel_row__filing_type"]
    now, before = ask.by_period(metrics, keys)
    rows = []
    for (province, kind), r in sorted(
        now.items(), key=lambda kv: (-kv[1]["filings_pending_over_72h"], kv[0])
    ):
        prev = before.get((province, kind), {}).get("filings_pending_over_72h")
        rows.append(
            [
                names["province"].get(province, "未知"),
                kind,
                *(r[m] for m in metrics),
                prev,
                _change(r["filings_pending_over_72h"], prev),
            ]
        )
    table = Table(
        "filings",
        "渠道报备（省份、类型）",
        [
            Column("省份"),
            Column("报备类型"),
            Column("报备总数", "int"),
            Column("待审批", "int"),
            Column("超72小时未审批", "int"),
            Column("已批准", "int"),
            Column("已驳回", "int"),
            Column("已备案", "int"),
            Column("上期超72小时未审批", "int"),
            Column(ask.period.change_name, "delta"),
        ],
        rows,
    )
    return Section("filings", "七、渠道报备", [chart], [table])
