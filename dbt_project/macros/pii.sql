{#- Phones never leave staging in clear text.
    normalize_phone_e164: mainland mobile numbers to E.164 (+8613800138000); spaces,
    dashes, brackets and a +86 / 0086 / 86 prefix are removed first. Anything that is
    not a mainland mobile number becomes null (nothing to hash).
    hash_pii: HMAC-SHA256 with the key the runner sets per connection
    (PGOPTIONS='-c qudao.pii_key=...'), so the key never appears in compiled SQL. -#}

{% macro normalize_phone_e164(column) -%}
    case
        when regexp_replace({{ column }}, '[^0-9]', '', 'g') ~ '^(0086|86)?1[3-9][0-9]{9}$'
            then '+86' || right(regexp_replace({{ column }}, '[^0-9]', '', 'g'), 11)
    end
{%- endmacro %}

{% macro hash_pii(expression) -%}
    ops.hmac_sha256_hex({{ expression }}, current_setting('qudao.pii_key'))
{%- endmacro %}
