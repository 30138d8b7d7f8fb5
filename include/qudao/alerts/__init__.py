"""Alerts: tell the right people what broke (and when it recovered).

Public API: :class:`QudaoAlertNotifier`, an Airflow notifier used as the DAG's and
tasks' callbacks.
"""

from __future__ import annotations

from qudao.alerts.notifier import QudaoAlertNotifier

__all__ = ["QudaoAlertNotifier"]
