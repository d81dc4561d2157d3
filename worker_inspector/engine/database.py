"""What the inspector reads from PostgreSQL, with any DB-API cursor (no ``odoo`` import)."""

QUERY_MAX_CHARS = 300
OVERDUE_LIMIT = 200

# Every session Odoo opened (application_name "odoo-<pid>", see
# odoo.sql_db.connection_info_for) on the cluster, whatever its database, but
# not the one asking. Active sessions are timed from their query's start,
# others from their last state change.
_SESSIONS_SQL = """
    SELECT application_name, pid, datname, state, wait_event_type, wait_event,
           EXTRACT(EPOCH FROM clock_timestamp()
                   - CASE WHEN state = 'active' THEN query_start ELSE state_change END),
           left(query, %s)
      FROM pg_stat_activity
     WHERE application_name LIKE 'odoo-%%'
       AND pid <> pg_backend_pid()
"""

# Scheduled actions that cron would have run by now: their next call, or a
# trigger (``_trigger()``, "Run Manually" aside), is due. Odoo stores UTC.
_OVERDUE_SQL = """
    SELECT c.id, c.cron_name,
           EXTRACT(EPOCH FROM due.at AT TIME ZONE 'UTC'),
           EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - due.at)
      FROM ir_cron c
      CROSS JOIN LATERAL (
            SELECT LEAST(c.nextcall, (SELECT min(t.call_at) FROM ir_cron_trigger t WHERE t.cron_id = c.id)) AS at
      ) due
     WHERE c.active AND due.at <= (now() AT TIME ZONE 'UTC')
     ORDER BY due.at, c.id
     LIMIT %s
"""


def _seconds(value):
    return round(float(value), 3) if value is not None else None


def read_pg_sessions(cr, max_chars=QUERY_MAX_CHARS):
    """Odoo's PostgreSQL sessions: dicts for ``activity.group_sessions_by_pid``."""
    cr.execute(_SESSIONS_SQL, (max_chars,))
    return [
        {
            "application_name": app,
            "backend_pid": backend_pid,
            "db": db,
            "state": state,
            "wait_event_type": wait_type,
            "wait_event": wait_event,
            "duration": _seconds(duration),
            "query": query,
        }
        for app, backend_pid, db, state, wait_type, wait_event, duration, query in cr.fetchall()
    ]


def read_overdue_crons(cr, db=None, limit=OVERDUE_LIMIT):
    """Active scheduled actions of the cursor's database whose run is due, oldest first."""
    cr.execute(_OVERDUE_SQL, (limit,))
    return [
        {"id": cron_id, "name": name, "db": db, "due_at": _seconds(due_epoch), "overdue": _seconds(late)}
        for cron_id, name, due_epoch, late in cr.fetchall()
    ]
