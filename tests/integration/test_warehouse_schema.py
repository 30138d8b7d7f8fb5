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
        assert {"_business_date", "_source_file", "_line_number", "_file_sha256", "_extra"} <= set(cols)


def test_ensure_schema_is_idempotent(conn):
    ensure_schema(conn)
    ensure_schema(conn)
    n = conn.execute("select count(*) from information_schema.tables where table_schema = 'raw'").fetchone()
    assert n[0] == len(ENTITIES)


def test_hmac_matches_python(conn):
    for key in ["k", "a-much-longer-secret-key-" * 4]:
        got = conn.execute("select ops.hmac_sha256_hex(%s, %s)", ("+8613800138000", key)).fetchone()[0]
        assert got == hmac.new(key.encode(), b"+8613800138000", hashlib.sha256).hexdigest()
