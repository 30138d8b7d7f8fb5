"""The ops ledger: the only code that knows the ``ops`` schema.

* :mod:`~qudao.ledger.migrations` — every ``ops`` table's DDL, as numbered migrations;
  :mod:`~qudao.ledger.migrate` applies them (the one ensure entry point), and
  :mod:`~qudao.ledger.raw_upgrade` upgrades raw tables of earlier releases;
* one module per concern for typed reads and writes: step outcomes (``outcomes``) and
  the run log (``runs``), gate results (``gates``), the loader's writes (``loads``) and
  reads of the load manifest (``manifest``), publishes (``publishes``), alerts
  (``alerts``), dbt state (``dbt_state``).

Imports only ``warehouse``, ``contracts``, ``constants`` and ``config`` below it.
"""
