"""``ops.alert_log``: every alert sent, its dedupe key and delivery (was ``alerts/facts.py``)."""

SQL = """
create table if not exists ops.alert_log (
    alert_id       bigserial primary key,
    dedupe_key     text not null unique,
    dag_id         text not null,
    run_id         text not null,
    task_id        text,
    try_number     integer,
    business_date  date,
    kind           text not null,
    status         text not null check (status in ('failure', 'recovery', 'notice')),
    subject        text not null,
    message        jsonb not null,
    channels       jsonb,
    created_at     timestamptz not null default now()
);
create index if not exists alert_log_dag on ops.alert_log (dag_id, alert_id);
create index if not exists alert_log_run on ops.alert_log (run_id);
"""
