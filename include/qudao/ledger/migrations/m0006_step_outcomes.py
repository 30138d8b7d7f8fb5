"""Typed step outcomes on ``ops.run_log`` (``qudao.ledger.outcomes``): the outcome's kind, the
sources it concerns, what failed, where to look. Alerts, ``qudao status`` and ``qudao run``
read these columns, not task ids or error text."""

SQL = """
alter table ops.run_log add column if not exists kind text;
alter table ops.run_log add column if not exists sources jsonb not null default '[]';
alter table ops.run_log add column if not exists failed jsonb not null default '[]';
alter table ops.run_log add column if not exists look jsonb not null default '[]';
alter table ops.run_log add column if not exists message text;
create index if not exists run_log_run on ops.run_log (run_id, logged_at);
"""
