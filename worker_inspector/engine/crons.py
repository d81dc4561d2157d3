"""Health of the scheduled actions, as ``GET /worker_inspector/api/crons`` returns it.

``cron_health`` joins the rows of ``ir_cron`` (``database.read_crons``), who
runs each job now (the activity of a snapshot: a cron worker or thread, or a
request's "Run Manually") and the Odoo sessions of other servers that run or
claim this database's jobs (``database.read_cron_pollers``).
"""

import time

from .activity import _session_pid
from .advice import OVERDUE_GRACE

WARN_MANUAL_OVERLAP = "manual_run_overlaps_cron"
WARN_RUNNING_TWICE = "running_twice"
WARN_OVERDUE = "overdue"
WARN_FAILING = "failing"
WARN_OTHER_SERVER = "other_server"
# A cron runner's kind on the board; any other kind running a job is "Run Manually".
CRON_KIND = "cron"


def _utc(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def running_jobs(snapshot):
    """``{cron_id: [runner]}``: who runs each scheduled action now.

    A runner is ``{"pid", "tid", "kind", "since", "manual"}``; ``manual`` is a
    request's "Run Manually" (an HTTP worker or thread), not a cron runner.
    """
    found = {}

    def add(pid, tid, activity):
        job = (activity or {}).get("cron_job")
        if not job or activity.get("state") != "busy":
            return
        found.setdefault(job["id"], []).append(
            {
                "pid": pid,
                "tid": tid,
                "kind": activity["kind"],
                "since": activity["since"],
                "manual": activity["kind"] != CRON_KIND,
            }
        )

    if snapshot["server"]["mode"] == "prefork":
        for proc in snapshot["processes"]:
            add(proc["pid"], None, proc.get("activity"))
    else:
        for thread in snapshot["threads"]:
            add(snapshot["served_by"], thread["native_id"], thread.get("activity"))
    return found


def other_servers(pollers, own_pids):
    """Sessions of Odoo processes that are not this server's, by ``odoo-<pid>``
    name and client address: another server polling this database's crons."""
    return [p for p in pollers if _session_pid(p["application_name"]) not in own_pids]


def count_sessions_of(sessions, pids):
    """How many of the ``odoo-<pid>`` sessions belong to ``pids``."""
    return sum(1 for s in sessions if _session_pid(s["application_name"]) in pids)


def last_runs(records, db):
    """``{cron id: record}``: each scheduled action's latest run among the request log's
    records (``requestlog.read_requests``) of kind ``cron`` on database ``db``."""
    latest = {}
    for record in records:
        job = record.get("cron_job")
        if record["kind"] != "cron" or not job or record["db"] != db:
            continue
        known = latest.get(job["id"])
        if known is None or record["started_at"] >= known["started_at"]:
            latest[job["id"]] = record
    return latest


def cron_health(rows, snapshot, cron_on, pollers=None, own_pids=(), now=None, runs=None):
    """The API's list, one dict per scheduled action (see README, "Scheduled actions");
    ``runs``: ``last_runs`` of the request log, for ``last_duration``."""
    now = snapshot["taken_at"] if now is None else now
    running = running_jobs(snapshot)
    foreign = other_servers(pollers or [], set(own_pids))
    # Locks and queries on this database's ir_cron (not a LISTEN on "postgres").
    foreign_here = [p for p in foreign if not (p["query"] or "").upper().startswith("LISTEN")]
    result = []
    for row in rows:
        runners = running.get(row["id"], [])
        due = (
            min(t for t in (row["next_call"], row["triggered_at"]) if t is not None)
            if (row["next_call"] is not None or row["triggered_at"] is not None)
            else None
        )
        overdue = round(now - due, 3) if row["active"] and due is not None and due <= now and not runners else None
        warnings = []
        if any(r["manual"] for r in runners) and any(not r["manual"] for r in runners):
            warnings.append(
                {
                    "code": WARN_MANUAL_OVERLAP,
                    "message": "Run Manually while a cron runner runs this job: it runs twice at once.",
                }
            )
        elif len(runners) > 1:
            warnings.append({"code": WARN_RUNNING_TWICE, "message": f"Running {len(runners)} times at once."})
        if cron_on and overdue is not None and overdue > OVERDUE_GRACE:
            warnings.append({"code": WARN_OVERDUE, "message": f"Overdue by {overdue:.0f} s while cron is on."})
        if row["failure_count"]:
            message = f"Failed {row['failure_count']} time(s) in a row"
            if row["first_failure_date"] is not None:
                message += f" since {_utc(row['first_failure_date'])}"
            warnings.append({"code": WARN_FAILING, "message": message + "."})
        if foreign_here and row["active"]:
            who = ", ".join(sorted({f"{p['application_name']}@{p['client_addr'] or 'local'}" for p in foreign_here}))
            warnings.append(
                {
                    "code": WARN_OTHER_SERVER,
                    "message": f"Another Odoo server runs this database's scheduled actions: {who}.",
                }
            )
        result.append(
            {
                "id": row["id"],
                "name": row["name"],
                "db": row["db"],
                "active": row["active"],
                "interval": row["interval"],
                "next_call": row["next_call"],
                "last_run": row["last_run"],
                # Odoo keeps no run time; this server's request log does, for its cron runs.
                "last_duration": _duration((runs or {}).get(row["id"])),
                "running": runners,
                "failure_count": row["failure_count"],
                "overdue": overdue,
                "warnings": warnings,
            }
        )
    return result


def _duration(record):
    return round(record["duration"], 3) if record else None


def cron_servers(pollers, own_pids):
    """Other Odoo servers with cron on the cluster (a LISTEN on cron triggers)."""
    return sorted(
        {
            (p["application_name"], p["client_addr"])
            for p in other_servers(pollers, set(own_pids))
            if (p["query"] or "").upper().startswith("LISTEN")
        }
    )
