"""``ops.gate_runs``: one row per quality gate run (was ``quality/results.py``)."""

SQL = """
create table if not exists ops.gate_runs (
    run_id          text not null,
    business_date   date not null,
    stage           text not null,
    passed          boolean not null,
    checks          integer not null,
    errors          integer not null,
    warnings        integer not null,
    data_docs_path  text,
    finished_at     timestamptz not null default now()
);
create index if not exists gate_runs_run on ops.gate_runs (run_id, business_date);
"""
