"""Write-audit-publish: make a checked night visible in ``marts``, all at once.

The package's rooms: ``apply`` (publish), ``rollback``, ``scope``
(which dates go together), ``tables`` (a published table's shape) and ``state``.

dbt writes ``marts_candidate`` (BI cannot see it); the gate checks it; :func:`publish`
copies the night into ``marts`` in **one transaction**:

* missing ``marts`` tables are created like their candidate (columns, types,
  defaults, column and table comments); tables are never dropped, so grants and
  comments survive;
* date-keyed models (dbt ``meta.date_column``) get delete + insert of the
  published dates' keys; other models are replaced whole — with ``DELETE``, not
  ``TRUNCATE``/``DROP``: readers keep their MVCC snapshot and never wait on a
  long lock, and a reader sees either the old night or the new one, never both —
  unless the candidate holds exactly the published rows (``unchanged``).

Rollback design: before replacing anything, the rows about to be replaced are
saved as ``jsonb`` in ``ops.publish_backup`` under the new ``publish_id``.
:func:`rollback` undoes the latest publish exactly (delete what it wrote, put the
saved rows back) and marks it ``rolled_back``; calling it again undoes the one
before. Backups of the last :data:`KEEP_BACKUPS` publishes are kept.
"""

from __future__ import annotations

#: rollbacks possible: one week of nightly publishes (read at call time by apply and rollback)
KEEP_BACKUPS = 7

from qudao.publish.apply import PublishRefused, PublishResult, publish  # noqa: E402
from qudao.publish.rollback import RollbackResult, rollback  # noqa: E402
from qudao.publish.scope import NightScope, night_scope, published_nights  # noqa: E402
from qudao.publish.state import PublishedTable, published_state  # noqa: E402

__all__ = [
    "KEEP_BACKUPS",
    "NightScope",
    "PublishRefused",
    "PublishResult",
    "PublishedTable",
    "RollbackResult",
    "night_scope",
    "publish",
    "published_nights",
    "published_state",
    "rollback",
]
