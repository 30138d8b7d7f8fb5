"""``ops.hmac_sha256_hex``: HMAC-SHA256 on the built-in sha256() (no pgcrypto needed: the
embedded server does not ship it). dbt staging hashes phone numbers with it."""

SQL = """
create or replace function ops.hmac_sha256_hex(message text, secret text)
returns text language plpgsql immutable strict parallel safe as $fn$
declare
    key bytea := convert_to(secret, 'UTF8');
    ipad bytea;
    opad bytea;
    i int;
begin
    if length(key) > 64 then
        key := sha256(key);
    end if;
    key := key || decode(repeat('00', 64 - length(key)), 'hex');
    ipad := key;
    opad := key;
    for i in 0..63 loop
        ipad := set_byte(ipad, i, get_byte(key, i) # 54);
        opad := set_byte(opad, i, get_byte(key, i) # 92);
    end loop;
    return encode(sha256(opad || sha256(ipad || convert_to(message, 'UTF8'))), 'hex');
end
$fn$;
"""
