"""``ops.publish_backup``: the rows a publish replaced, for rollback (was ``publish.py``)."""

SQL = """
create table if not exists ops.publish_backup (
    publish_id  bigint not null,
    table_name  text not null,
    row_data    jsonb not null
);
create index if not exists publish_backup_id on ops.publish_backup (publish_id, table_name);
"""
