"""The ops ledger: the only code that knows the ``ops`` schema.

* :mod:`~qudao.ledger.migrations` — every ``ops`` table's DDL, as numbered migrations;
  :mod:`~qudao.ledger.migrate` applies them (the one ensure entry point);
* one module per concern for typed reads and writes: runs and step outcomes
  (``runs``), gate results (``gates``), publishes (``publishes``), alerts (``alerts``),
  loads (``loads``), dbt state (``dbt_state``).

Imports only ``warehouse``, ``contracts``, ``constants`` and ``config`` below it.
"""
