"""The report as one self-contained HTML page: ECharts charts (via pyecharts) and their tables.

ECharts itself is inlined (``static/echarts.min.js``), so the page draws its charts
without a network, also as an e-mail attachment. Charts render as SVG. The output
depends only on the report's numbers: no timestamps, fixed chart ids.
"""

from __future__ import annotations

import html
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from qudao.reports.content import Chart, Report, Table

STATIC = Path(__file__).resolve().parent / "static"
_PERCENT_AXIS = "function (v) { return (v * 100).toFixed(0) + '%'; }"
_PERCENT_TIP = (
    "function (ps) { ps = [].concat(ps); return ps[0].axisValueLabel + '<br/>' + ps.map(function (p) {"
    " return p.marker + p.seriesName + ': ' + (p.value == null ? '—' : (p.value * 100).toFixed(2) + '%');"
    " }).join('<br/>'); }"
)


@cache
def echarts_js() -> str:
    return (STATIC / "echarts.min.js").read_text(encoding="utf-8")


def cell_text(value: Any, kind: str) -> str:
    """A value as the reader sees it (rates in %, changes signed)."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{float(value) * 100:.2f}%"
    if kind == "pp":
        return f"{float(value) * 100:+.2f} 个百分点"
    if kind == "delta":
        return f"{float(value):+g}"
    if kind == "num":
        return f"{float(value):,.1f}"
    if kind == "int":
        return f"{int(value):,}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def cell_value(value: Any) -> str:
    """The raw value of a cell (``data-value``), for machines reading the page."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)


def chart_options(chart: Chart) -> str:
    """ECharts options of ``chart`` built with pyecharts, as JavaScript."""
    from pyecharts import options as opts
    from pyecharts.charts import Bar, Funnel, Line
    from pyecharts.commons.utils import JsCode

    x = [v.isoformat() if isinstance(v, date) else str(v) for v in chart.x]
    init = opts.InitOpts(chart_id=f"chart-{chart.key}", renderer="svg", bg_color="#ffffff")
    value_axis = opts.AxisOpts(
        type_="value",
        axislabel_opts=opts.LabelOpts(formatter=JsCode(_PERCENT_AXIS)) if chart.percent else None,
    )
    tooltip = opts.TooltipOpts(trigger="axis", formatter=JsCode(_PERCENT_TIP) if chart.percent else None)
    if chart.kind == "funnel":
        c: Any = Funnel(init_opts=init)
        name, values = chart.series[0]
        c.add(
            name,
            [(k, v) for k, v in zip(x, values, strict=True)],
            sort_="none",
            label_opts=opts.LabelOpts(position="inside", formatter="{b}: {c}"),
        )
        c.set_global_opts(title_opts=opts.TitleOpts(title=chart.title), tooltip_opts=opts.TooltipOpts())
        return c.dump_options()
    c = Line(init_opts=init) if chart.kind == "line" else Bar(init_opts=init)
    c.add_xaxis(x)
    mark = None
    if chart.mark_line is not None:
        label, value = chart.mark_line
        mark = opts.MarkLineOpts(
            data=[opts.MarkLineItem(y=value, name=label)],
            label_opts=opts.LabelOpts(formatter=label),
            linestyle_opts=opts.LineStyleOpts(type_="dashed", color="#d94e5d"),
            symbol="none",
        )
    for i, (name, values) in enumerate(chart.series):
        data = [None if v is None else float(v) for v in values]
        extra: dict[str, Any] = {"stack": "total"} if chart.kind == "stack" else {}
        c.add_yaxis(
            name,
            data,
            markline_opts=mark if i == 0 else None,
            label_opts=opts.LabelOpts(is_show=False),
            **extra,
        )
    c.set_global_opts(
        title_opts=opts.TitleOpts(title=chart.title),
        legend_opts=opts.LegendOpts(pos_top="8%", type_="scroll"),
        tooltip_opts=tooltip,
        yaxis_opts=value_axis,
    )
    if chart.kind == "hbar":
        c.reversal_axis()
        c.set_global_opts(
            title_opts=opts.TitleOpts(title=chart.title),
            legend_opts=opts.LegendOpts(is_show=False),
            tooltip_opts=tooltip,
            xaxis_opts=value_axis,
            yaxis_opts=opts.AxisOpts(type_="category", is_inverse=True),
        )
    return c.dump_options()


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c.title)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, v in enumerate(row):
            kind = table.kind(i, j)
            css = ' class="n"' if kind not in ("text", "date") else ""
            cells.append(
                f'<td{css} data-value="{html.escape(cell_value(v))}">{html.escape(cell_text(v, kind))}</td>'
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    empty = f'<tr><td colspan="{len(table.columns)}">本期无数据</td></tr>' if not table.rows else ""
    return (
        f'<table class="data" id="t-{table.key}"><caption>{html.escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}{empty}</tbody></table>"
    )


STYLE = """
body { font-family: "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", sans-serif;
       margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 2px solid #3a6ea5; padding-bottom: .2em; }
.chart { width: 960px; height: 420px; margin: 1em 0; }
table.data { border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }
table.data caption { text-align: left; font-weight: bold; padding: .3em 0; }
table.data th, table.data td { border: 1px solid #ccc; padding: .25em .6em; }
table.data th { background: #eef3f8; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #666; font-size: .9em; }
"""


def render_html(report: Report) -> str:
    """The whole page."""
    p = report.period
    title = f"{p.name} {p.title}"
    as_of = f"数据截至 {report.as_of.isoformat()}" if report.as_of else "本期无已发布数据"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
        f"<script>{echarts_js()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{html.escape(as_of)}；统计区间 {p.start.isoformat()} 至 {p.end.isoformat()}'
        f"（周一为一周之始，北京时间）；{html.escape(p.change_name)}为与上一期相比。</p>",
    ]
    for section in report.sections:
        parts.append(f'<section id="s-{section.key}"><h2>{html.escape(section.title)}</h2>')
        if section.note:
            parts.append(f'<p class="note">{html.escape(section.note)}</p>')
        for chart in section.charts:
            parts.append(f'<div class="chart" id="chart-{chart.key}"></div>')
            parts.append(
                f"<script>echarts.init(document.getElementById('chart-{chart.key}'), null,"
                f" {{renderer: 'svg'}}).setOption({chart_options(chart)});</script>"
            )
        parts += [table_html(t) for t in section.tables]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
