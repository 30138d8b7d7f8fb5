{#- Versions of source records.

    Raw keeps every delivered row: a snapshot re-delivers the same version every day,
    a corrected record comes again with a later updated_at.

    latest_version: one row per key, the latest version (latest updated_at; ties: later
    business date, then later load, then later line).

    version_intervals: one row per distinct version of a key with the business dates
    during which it was the one known: known_from_date (first business date it was
    delivered) and known_to_date (exclusive: first business date a newer version was
    delivered; 9999-12-31 while none was). The version valid "as known at" date D is the
    one with known_from_date <= D < known_to_date, which is exactly what a run for D
    saw, so re-running D later gives the same answer. A version superseded before it was
    ever delivered (stale resend) gets an empty interval and is dropped. -#}

{% macro latest_version(relation, key_columns, columns, version_order='updated_at desc') -%}
    with ranked_deliveries as (
        -- every delivery of a key, newest version first
        select
            {%- for c in columns %}
            {{ c }},
            {%- endfor %}
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by {{ version_order }}, _business_date desc, _load_id desc, _line_number desc
            ) as version_rank
        from {{ relation }}
    )

    select
        {%- for c in columns %}
        {{ c }}{{ "," if not loop.last }}
        {%- endfor %}
    from ranked_deliveries
    where version_rank = 1
{%- endmacro %}

{#- What makes two deliveries of a key the same version: their version and attribute
    columns, as text. version_intervals groups deliveries by it, and the snapshot models'
    touched-key test compares tonight's row with the current version by it. -#}
{% macro version_fingerprint(columns, prefix='') -%}
    md5(row({% for c in columns %}{{ prefix }}{{ c }}{{ ', ' if not loop.last }}{% endfor %})::text)
{%- endmacro %}

{% macro version_intervals(relation, key_columns, version_columns, attribute_columns) -%}
    {%- set keys = key_columns | join(', ') -%}
    {%- set all_columns = key_columns + version_columns + attribute_columns -%}
    with fingerprinted as (
        -- every delivery, with the fingerprint of the version it carries
        select
            *,
            {{ version_fingerprint(version_columns + attribute_columns) }} as version_fingerprint
        from {{ relation }}
    ),

    versions as (
        -- one row per distinct version of a key (its latest delivery), with the first
        -- business date it was delivered: known_from_date
        select
            {%- for c in all_columns %}
            {{ c }},
            {%- endfor %}
            min(_business_date) over (
                partition by {{ keys }}, version_fingerprint
            ) as known_from_date,
            row_number() over (
                partition by {{ keys }}, version_fingerprint
                order by _business_date desc, _load_id desc, _line_number desc
            ) as delivery_rank
        from fingerprinted
    ),

    intervals as (
        -- known_to_date: the earliest known_from_date of the key's newer versions (those
        -- sorted before this one, newest version first); 9999-12-31 while none exists
        select
            {%- for c in all_columns %}
            {{ c }},
            {%- endfor %}
            known_from_date,
            coalesce(
                min(known_from_date) over (
                    partition by {{ keys }}
                    order by {% for c in version_columns %}{{ c }} desc, {% endfor %}known_from_date desc
                    rows between unbounded preceding and 1 preceding
                ),
                date '9999-12-31'
            ) as known_to_date
        from versions
        where delivery_rank = 1
    )

    -- a version superseded before it was ever delivered (a stale resend) has an empty
    -- interval: it was never the one known, so it is dropped
    select
        {%- for c in all_columns %}
        {{ c }},
        {%- endfor %}
        known_from_date,
        known_to_date
    from intervals
    where known_from_date < known_to_date
{%- endmacro %}

{#- Type-2 history from version intervals: consecutive known versions whose tracked
    attributes are equal collapse into one row; valid_from is the business date the
    first of them became known, valid_to (exclusive) the date the next differing one
    did, 9999-12-31 for the current row. Other attributes come from the first version
    of each row. -#}
{% macro scd2_from_intervals(relation, key_column, tracked_columns, other_columns) -%}
    {%- set cols = tracked_columns + other_columns -%}
    with tracked_versions as (
        -- each known version, its tracked attributes as one comparable value, and the
        -- previous version's
        select
            *,
            row({{ tracked_columns | join(', ') }})::text as tracked,
            lag(row({{ tracked_columns | join(', ') }})::text) over (
                partition by {{ key_column }} order by known_from_date
            ) as previous_tracked
        from {{ relation }}
    ),

    changes as (
        -- the versions where a tracked attribute changed open a row of the history
        select
            {{ key_column }},
            {%- for c in cols %}
            {{ c }},
            {%- endfor %}
            known_from_date as valid_from
        from tracked_versions
        where tracked is distinct from previous_tracked
    )

    -- a row is valid until the next change (exclusive); the current row until 9999-12-31
    select
        {{ key_column }},
        {%- for c in cols %}
        {{ c }},
        {%- endfor %}
        valid_from,
        coalesce(
            lead(valid_from) over (partition by {{ key_column }} order by valid_from), date '9999-12-31'
        ) as valid_to
    from changes
{%- endmacro %}

{#- The rows a nightly model (re)computes, and the clean-up after it.

    The version models (int_*__versions) read the deliveries of an entity
    (stg_<source>__<entity>_deliveries), the facts its latest versions (stg_<source>__<entity>);
    both are staging models. In an incremental run (dates start_date .. run_date) a model
    recomputes the keys touched by those dates: every key delivered in them, and every key
    the target dates in them (a corrected file supersedes an earlier load of its date, so a
    version can disappear). A key's rows depend only on its own deliveries, so recomputing
    a touched key from all of them (delete+insert on the key) gives the rows a full rebuild
    gives, while a night reads only the night's keys, each through the deliveries' index on
    the key. A key none of whose deliveries is left produces no row; delete_vanished_versions
    (a post-hook) removes its old rows.

    target_date_column dates the target's rows: known_from_date for the version models, the
    facts' last_delivered_date (the business date the current version was delivered).

    Daily full snapshots (partners, channel managers) deliver every key every night, so
    for them (snapshot_columns = the version and attribute columns) a key delivered in
    the window counts as touched only when a delivery differs from its current version:
    re-delivering the current version changes none of the key's intervals. -#}
{% macro rows_of_touched_keys(
    relation, deliveries, key_columns, incremental, target, target_date_column='known_from_date',
    snapshot_columns=none
) -%}
    {%- set keys = key_columns | join(', ') -%}
    {%- if incremental %}
    with touched_keys as (
        -- keys delivered in the window (for snapshots: only when the delivery differs from
        -- the key's current version) ...
        select {{ keys }}
        from {{ deliveries }} as tonight
        where
            _business_date between {{ run_start_date(true) }} and {{ run_end_date() }}
            {%- if snapshot_columns %}
            and not exists (
                select 1
                from {{ target }} as known
                where
                    {%- for k in key_columns %}
                    known.{{ k }} = tonight.{{ k }}
                    and {% endfor -%}
                    known.known_to_date = date '9999-12-31'
                    and {{ version_fingerprint(snapshot_columns, 'known.') }}
                    = {{ version_fingerprint(snapshot_columns, 'tonight.') }}
            )
            {%- endif %}
        union
        -- ... and keys whose rows the target dates in the window (a corrected file of a
        -- date can take a version away)
        select {{ keys }}
        from {{ target }}
        where {{ target_date_column }} between {{ run_start_date(true) }} and {{ run_end_date() }}
    )

    -- the rows of each touched key, from any date
    select keyed.*
    from touched_keys
    cross join lateral (
        -- Planner trick: one lookup per touched key through the deliveries' index on the
        -- key (for a stg_ latest view, PostgreSQL pushes the key condition below its window
        -- function: the key is its partition). Without "offset 0" PostgreSQL flattens the
        -- lateral subquery into a hash join that reads every delivery of the entity; offset 0
        -- keeps it a subquery, so a night reads only its keys' rows.
        select *
        from {{ relation }} as candidate
        where
            {%- for k in key_columns %}
            candidate.{{ k }} = touched_keys.{{ k }}{{ ' and' if not loop.last }}
            {%- endfor %}
        offset 0
    ) as keyed
    {%- else %}
    select *
    from {{ relation }}
    {%- endif %}
{%- endmacro %}

{% macro delete_vanished_versions(deliveries, key_columns, target_date_column='known_from_date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as kept
        where
            kept.{{ target_date_column }} between {{ run_start_date(true) }} and {{ run_end_date() }}
            -- an anti-join, not "(keys) not in (subquery)": PostgreSQL hashes a row-valued
            -- NOT IN only while the subquery fits in work_mem, and otherwise rescans it for
            -- every row (a large night's million order lines ran for hours)
            and not exists (
                select 1
                from {{ deliveries }} as delivered
                where
                    delivered._business_date between {{ run_start_date(true) }} and {{ run_end_date() }}
                    {%- for k in key_columns %}
                    and delivered.{{ k }} = kept.{{ k }}
                    {%- endfor %}
            )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
