"""The Airflow notifier behind every qudao alert.

One instance serves as task ``on_failure_callback`` (called once a task has no
retries left), DAG ``on_failure_callback`` / ``on_success_callback`` and as a
deadline-alert callback; it tells them apart by the context it receives:

* task failure → one alert naming the task, the error and what the ops tables say
  (failed checks with observed vs expected, refused files, rejected rows);
* DAG run failure → an alert only if no task alert already covered the run
  (e.g. the run timed out or a task died without running its callback);
* one failure alert per failed run: once a task of the run alerted, another failed
  task of it (two loaders failing on the same unreachable server) sends nothing,
  until the run is cleared (its ``clear_number`` grows) and fails again;
* DAG run success → a "recovered" notice once after a failure, else a digest
  when the gate passed with warnings, else nothing;
* missed deadline → "marts not published by the deadline" unless the night was
  published meanwhile.

Each alert is claimed in ``ops.alert_log`` under a dedupe key before it is sent
(``task:<dag>:<run>:<task>:<map index>:<try>`` …), so a callback that runs twice
sends once. When the warehouse is unreachable, the claims go to a ledger file on
this machine instead (:mod:`qudao.alerts.local_ledger`). Heavy imports happen inside
:meth:`notify`: the DAG file stays light.
"""

from __future__ import annotations

import os
import time
from typing import Any

from airflow.sdk import BaseNotifier


class AlertDeliveryError(RuntimeError):
    """No configured channel accepted the alert (it was still logged and written to the file)."""


class QudaoAlertNotifier(BaseNotifier):
    """Notifies on task failure, DAG failure, DAG success (recovery) and missed deadlines.

    Channels and recipients come from the environment (see docs/alerts.md); the
    keyword arguments override them (mainly for tests). ``context`` is accepted so
    Airflow's deadline-alert ``SyncCallback(QudaoAlertNotifier)`` can build it.
    """

    template_fields = ()

    def __init__(
        self,
        *,
        warehouse_url: str | None = None,
        environ: dict[str, str] | None = None,
        run_grace_seconds: float | None = None,
        context: Any = None,
    ) -> None:
        super().__init__(context)
        self.warehouse_url = warehouse_url
        self.environ = environ
        self.run_grace_seconds = run_grace_seconds

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to template; skipping also spares DAG callbacks under ``dag.test``, whose
        context holds a SerializedDAG that has no template environment."""

    # --- entry point ---------------------------------------------------------------------------

    def notify(self, context: Any) -> None:
        """Compose and deliver the alert for ``context`` (see the module docstring)."""
        from qudao.alerts.compose import compose, event_of, fallback_alert
        from qudao.alerts.config import AlertConfig
        from qudao.alerts.facts import NightFacts

        try:
            cfg = AlertConfig.from_env(self.environ)
        except Exception as e:  # a typo in a setting must not swallow the alert
            self.log.error("qudao alert: invalid settings (%s); using the task log and local file only", e)
            cfg = AlertConfig.fallback()
        ev = event_of(dict(context))
        conn = self._connect()
        try:
            facts, previous = NightFacts(), None
            if conn is not None:
                facts, previous = self._facts(conn, ev)
            if ev.type == "run_failure" and self._run_covered(conn, ev):
                self.log.info(
                    "qudao alert: run %s already alerted by its failed task; no run alert", ev.run_id
                )
                return
            if ev.type == "task_failure" and self._run_covered(conn, ev):
                self.log.info(
                    "qudao alert: run %s already alerted; %s failing too sends no second alert",
                    ev.run_id,
                    ev.task_id,
                )
                return
            if ev.type == "run_success" and not previous and not facts.failed_checks:
                self.log.info("qudao: run %s (%s) published cleanly; no alert", ev.run_id, ev.business_date)
                return
            if ev.type == "deadline" and facts.published:
                self.log.info("qudao: deadline passed but %s is published; no alert", ev.business_date)
                return
            try:
                alert = compose(ev, facts, previous)
            except Exception as e:
                self.log.exception("qudao alert: composing failed; sending a bare alert")
                alert = fallback_alert(ev, e)
            alert.dedupe_key = self._dedupe_key(ev, alert.status)
            alert.clear_number = ev.clear_number
            if not self._claim(conn, alert):
                self.log.info("qudao alert %s already sent; not sending again", alert.dedupe_key)
                return
            channels = self._deliver(cfg, alert)
            if conn is not None:
                self._record(conn, alert, channels)
        finally:
            if conn is not None:
                conn.close()
        failed = [f"{k}: {v}" for k, v in channels.items() if v.startswith("FAILED")]
        delivered = [
            k for k, v in channels.items() if k in ("email", "webhook") and not v.startswith("FAILED")
        ]
        if failed and not delivered and (cfg.email_enabled or cfg.webhook_enabled):
            raise AlertDeliveryError(
                f"qudao alert {alert.dedupe_key} reached no channel ({'; '.join(failed)}); "
                f"it is in the task log and {cfg.log_file}"
            )

    # --- steps ---------------------------------------------------------------------------------

    def _connect(self) -> Any:
        """A warehouse connection, or None (alerts still go out, without facts or dedupe)."""
        try:
            import psycopg

            from qudao.ledger.migrate import ensure_ops

            url = self.warehouse_url
            if not url:
                from qudao.warehouse.connection import current_url

                url = current_url()
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except Exception as e:
            self.log.error("qudao alert: warehouse unavailable (%s); sending without ops facts or dedupe", e)
            return None
        try:
            ensure_ops(conn)
        except Exception as e:
            self.log.error("qudao alert: ops ledger not up to date (%s); dedupe will not work", e)
        return conn

    def _facts(self, conn: Any, ev: Any) -> tuple[Any, dict[str, Any] | None]:
        from qudao.alerts.facts import NightFacts, night_facts
        from qudao.ledger.alerts import open_failure
        from qudao.ledger.outcomes import latest_failure
        from qudao.ledger.runs import business_date_of_run

        facts, previous = NightFacts(), None
        try:
            if ev.type == "task_failure" and ev.outcome is None:  # the step's own record of its failure
                ev.outcome = latest_failure(conn, ev.run_id)
                if ev.business_date is None and ev.outcome is not None:
                    ev.business_date = ev.outcome.business_date
            if ev.business_date is None:
                ev.business_date = business_date_of_run(conn, ev.run_id)
            facts = night_facts(conn, ev.run_id, ev.business_date)
            if ev.type == "run_success":
                previous = open_failure(conn, ev.dag_id)
        except Exception as e:
            self.log.error("qudao alert: could not read the ops tables (%s); sending what is known", e)
        return facts, previous

    def _run_covered(self, conn: Any, ev: Any) -> bool:
        """Whether a failure alert already covers this run since it was last cleared.

        A run failure caused by a failed task waits a little for that task's callback.
        """
        grace = self.run_grace_seconds
        if grace is None:
            grace = float(os.environ.get("QUDAO_ALERT_RUN_GRACE_SECONDS", "15"))
        waits = ev.type == "run_failure" and ev.reason == "task_failure"
        deadline = time.monotonic() + (grace if waits else 0)
        while True:
            try:
                if self._alerted(conn, ev):
                    return True
            except Exception as e:
                self.log.error("qudao alert: could not read the alert ledger (%s)", e)
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)

    @staticmethod
    def _alerted(conn: Any, ev: Any) -> bool:
        """Whether the ledger (``ops.alert_log``, else the local file) has a failure alert of the run."""
        from qudao.alerts import local_ledger
        from qudao.ledger.alerts import run_already_alerted

        if conn is not None:
            return run_already_alerted(conn, ev.dag_id, ev.run_id, ev.clear_number)
        return local_ledger.failure_alerted(ev.dag_id, ev.run_id, ev.clear_number)

    @staticmethod
    def _dedupe_key(ev: Any, status: str) -> str:
        if ev.type == "task_failure":
            return f"task:{ev.dag_id}:{ev.run_id}:{ev.task_id}:{ev.map_index}:{ev.try_number}"
        if ev.type == "run_success":  # one message per successful run: recovery or digest
            return f"success:{ev.dag_id}:{ev.run_id}"
        return f"{ev.type}:{ev.dag_id}:{ev.run_id}"

    def _claim(self, conn: Any, alert: Any) -> bool:
        from qudao.alerts import local_ledger
        from qudao.ledger.alerts import claim

        try:
            if conn is None:
                return local_ledger.claim(alert.dedupe_key, alert.record())
            return claim(conn, alert.dedupe_key, alert.record())
        except Exception as e:
            self.log.error("qudao alert: could not write the alert ledger (%s); sending without dedupe", e)
            return True

    def _record(self, conn: Any, alert: Any, channels: dict[str, str]) -> None:
        from qudao.ledger.alerts import record_delivery

        try:
            record_delivery(conn, alert.dedupe_key, channels)
        except Exception as e:
            self.log.error("qudao alert: could not record the delivery in ops.alert_log (%s)", e)

    def _deliver(self, cfg: Any, alert: Any) -> dict[str, str]:
        """Try every configured channel; one failing never stops the others."""
        from qudao.alerts import channels as ch

        level = self.log.error if alert.status == "failure" else self.log.warning
        level("qudao alert\n%s", alert.body())
        results: dict[str, str] = {}
        senders = []
        if cfg.email_enabled:
            senders.append(("email", ch.send_email))
        if cfg.webhook_enabled:
            senders.append(("webhook", ch.send_webhook))
        for name, send in senders:
            try:
                results[name] = send(cfg, alert)
                self.log.info("qudao alert %s: %s %s", alert.dedupe_key, name, results[name])
            except Exception as e:
                results[name] = f"FAILED: {type(e).__name__}: {e}"
                self.log.error(
                    "qudao alert %s: DELIVERY FAILED via %s: %s", alert.dedupe_key, name, results[name]
                )
        all_failed = bool(senders) and all(v.startswith("FAILED") for v in results.values())
        if cfg.log_file and (not senders or all_failed or cfg.always_log_file):
            try:
                results["file"] = ch.write_file(cfg.log_file, alert, dict(results))
            except Exception as e:
                results["file"] = f"FAILED: {type(e).__name__}: {e}"
                self.log.error("qudao alert %s: could not write %s: %s", alert.dedupe_key, cfg.log_file, e)
        return results
