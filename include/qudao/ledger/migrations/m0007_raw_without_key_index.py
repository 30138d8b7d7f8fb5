"""Raw without the B-tree on the contract key (issue 12): it cost the loader ~40 % of the
server's COPY speed, and nothing probes raw by key any more; the nightly models read
staging's deliveries tables, which carry the key index (``qudao.warehouse.schema``).
The rows stay; only the index goes. Written out per raw table (a shipped migration's SQL
never changes with the contracts)."""

SQL = """
drop index if exists raw.crm__partners_key;
drop index if exists raw.crm__channel_managers_key;
drop index if exists raw.crm__products_key;
drop index if exists raw.crm__channel_filings_key;
drop index if exists raw.crm__visits_key;
drop index if exists raw.call_center__calls_key;
drop index if exists raw.dealer_sales__orders_key;
drop index if exists raw.dealer_sales__inventory_key;
"""
