import hashlib
import hmac

from qudao.contracts import ENTITIES
from qudao.warehouse.schema import ensure_schema


def test_every_raw_table_has_contract_and_load_columns(conn):
    for e in ENTITIES:
        cols = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'raw' and table_name = %s order by ordinal_position",
                (e.raw_table,),
            )
        ]
        assert cols[: len(e.columns)] == list(e.column_names)
        # per row only what differs per row or scopes a night; per file: ops.raw_files
        assert cols[len(e.columns) :] == ["_extra", "_business_date", "_line_number", "_load_id"]


def test_a_raw_table_of_the_previous_release_is_migrated_without_losing_what_it_knew(conn):
    """Earlier releases repeated file name, checksum and load time on every raw row."""
    conn.execute("drop table raw.crm__products")
    conn.execute(
        "create table raw.crm__products (sku text, product_name text, category text, unit text,"
        " list_price numeric(14, 2), updated_at timestamptz, _extra jsonb, _business_date date not null,"
        " _source_file text not null, _line_number integer not null, _file_sha256 text not null,"
        " _load_id bigint not null, _loaded_at timestamptz not null default now())"
    )
    load_id = conn.execute(
        "insert into ops.load_manifest (source, entity, business_date, path, file_name, sha256, size_bytes,"
        " status, rows_in, rows_loaded, rows_rejected, finished_at) values ('crm', 'products', '2026-11-02',"
        " '/landing/crm/2026-11-02/products.csv', 'products.csv', 'abc123', 10, 'loaded', 2, 2, 0,"
        " '2026-11-03 02:10:00+08') returning load_id"
    ).fetchone()[0]
    conn.execute(
        "insert into raw.crm__products (sku, product_name, list_price, _business_date, _source_file,"
        " _line_number, _file_sha256, _load_id, _loaded_at) values"
        " ('SKU1', '瓷砖', 1.50, '2026-11-02', 'crm/2026-11-02/products.csv', 2, 'abc123', %(id)s,"
        " '2026-11-03 02:10:00+08'),"
        " ('SKU2', '地板', 2.50, '2026-11-02', 'crm/2026-11-02/products.csv', 3, 'abc123', %(id)s,"
        " '2026-11-03 02:10:00+08')",
        {"id": load_id},
    )
    # dbt's base view expanded `select *` over the old columns; a staging view reads it in turn
    conn.execute(
        "create view staging.base_crm__products as"
        " with source_rows as (select * from raw.crm__products) select sku, _load_id from source_rows"
    )
    conn.execute("create view staging.stg_crm__products as select sku from staging.base_crm__products")
    before = conn.execute(
        "select sku, product_name, list_price, _business_date, _source_file, _line_number, _file_sha256,"
        " _load_id, _loaded_at from raw.crm__products order by sku"
    ).fetchall()

    ensure_schema(conn)

    after = conn.execute(
        "select sku, product_name, list_price, _business_date, f.source_file, _line_number, f.file_sha256,"
        " _load_id, f.loaded_at from raw.crm__products join ops.raw_files f on f.load_id = _load_id"
        " order by sku"
    ).fetchall()
    assert after == before
    cols = {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw'"
            " and table_name = 'crm__products'"
        )
    }
    assert not cols & {"_source_file", "_file_sha256", "_loaded_at"}
    # the views were dropped for dbt to recreate on its next build
    assert conn.execute("select count(*) from pg_views where schemaname = 'staging'").fetchone()[0] == 0


def test_a_view_of_someone_elses_over_the_old_columns_keeps_them(conn):
    conn.execute("alter table raw.crm__products add column _source_file text not null default 'x'")
    conn.execute("create schema if not exists analyst_sandbox")
    conn.execute("create view analyst_sandbox.files as select distinct _source_file from raw.crm__products")
    ensure_schema(conn)
    nullable = conn.execute(
        "select is_nullable from information_schema.columns where table_schema = 'raw'"
        " and table_name = 'crm__products' and column_name = '_source_file'"
    ).fetchone()
    assert nullable == ("YES",)
    assert conn.execute("select count(*) from analyst_sandbox.files").fetchone() == (0,)


def test_ensure_schema_is_idempotent(conn):
    ensure_schema(conn)
    ensure_schema(conn)
    n = conn.execute("select count(*) from information_schema.tables where table_schema = 'raw'").fetchone()
    assert n[0] == len(ENTITIES)


def test_hmac_matches_python(conn):
    for key in ["k", "a-much-longer-secret-key-" * 4]:
        got = conn.execute("select ops.hmac_sha256_hex(%s, %s)", ("+8613800138000", key)).fetchone()[0]
        assert got == hmac.new(key.encode(), b"+8613800138000", hashlib.sha256).hexdigest()
