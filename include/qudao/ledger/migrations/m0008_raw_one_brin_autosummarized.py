"""Raw's two BRIN indexes (on ``_load_id`` and on ``_business_date``) become one on both columns,
summarised by autovacuum (issue 12). Each index cost every COPY row an index insertion and the
load a pass over the night's pages to summarise it; a BRIN index answers a query on any of its
columns, and ``autosummarize`` has autovacuum summarise each range once the load has moved past
it, instead of the loader. The old indexes go here; :func:`qudao.warehouse.schema.raw_table_ddl`
creates the new one (``<table>_load_date``) with the raw tables. Written out per raw table (a
shipped migration's SQL never changes with the contracts)."""

SQL = """
drop index if exists raw.crm__partners_load;
drop index if exists raw.crm__partners_date;
drop index if exists raw.crm__channel_managers_load;
drop index if exists raw.crm__channel_managers_date;
drop index if exists raw.crm__products_load;
drop index if exists raw.crm__products_date;
drop index if exists raw.crm__channel_filings_load;
drop index if exists raw.crm__channel_filings_date;
drop index if exists raw.crm__visits_load;
drop index if exists raw.crm__visits_date;
drop index if exists raw.call_center__calls_load;
drop index if exists raw.call_center__calls_date;
drop index if exists raw.dealer_sales__orders_load;
drop index if exists raw.dealer_sales__orders_date;
drop index if exists raw.dealer_sales__inventory_load;
drop index if exists raw.dealer_sales__inventory_date;
"""
