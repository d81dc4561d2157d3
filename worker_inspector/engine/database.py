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


# PostgreSQL's connection limits and use, for the advice (db_maxconn_vs_postgres).
_POSTGRES_SQL = """
    SELECT current_setting('max_connections')::int,
           current_setting('superuser_reserved_connections')::int,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
           (SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'),
           inet_server_addr()
"""


def read_postgres_limits(cr):
    """``max_connections``, ``reserved``, ``in_use`` and ``shared_buffers`` of the
    cursor's cluster, and ``local`` when it is reached on a Unix socket or loopback."""
    cr.execute(_POSTGRES_SQL)
    max_connections, reserved, in_use, shared_buffers, server_addr = cr.fetchone()
    return {
        "max_connections": max_connections,
        "reserved": reserved,
        "in_use": in_use,
        "shared_buffers": shared_buffers,
        "local": server_addr is None or str(server_addr).split("/")[0] in ("127.0.0.1", "::1"),
    }


# Every scheduled action of the database. ``failure_count`` and
# ``first_failure_date`` exist from Odoo 18.0 (NULL before).
_CRONS_COLUMNS = """
    SELECT c.id, c.cron_name, c.active, c.interval_number, c.interval_type,
           EXTRACT(EPOCH FROM c.nextcall AT TIME ZONE 'UTC'),
           EXTRACT(EPOCH FROM c.lastcall AT TIME ZONE 'UTC'),
"""
_CRONS_FROM = """,
           EXTRACT(EPOCH FROM (SELECT min(t.call_at) FROM ir_cron_trigger t WHERE t.cron_id = c.id)
                              AT TIME ZONE 'UTC')
      FROM ir_cron c
     ORDER BY c.id
"""
_CRONS_SQL = {
    True: _CRONS_COLUMNS + "c.failure_count, EXTRACT(EPOCH FROM c.first_failure_date AT TIME ZONE 'UTC')" + _CRONS_FROM,
    False: _CRONS_COLUMNS + "NULL, NULL" + _CRONS_FROM,
}


def read_crons(cr, db=None):
    """Rows of ``ir_cron`` for ``crons.cron_health``."""
    cr.execute(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'ir_cron' AND column_name IN ('failure_count', 'first_failure_date')"
        " AND table_schema = current_schema()"
    )
    cr.execute(_CRONS_SQL[cr.fetchone()[0] == 2])
    return [
        {
            "id": cron_id,
            "name": name if isinstance(name, str) else (name or {}).get("en_US"),
            "db": db,
            "active": active,
            "interval": {"number": number, "type": unit},
            "next_call": _seconds(nextcall),
            "last_run": _seconds(lastcall),
            "failure_count": failure_count,
            "first_failure_date": _seconds(first_failure),
            "triggered_at": _seconds(trigger),
        }
        for cron_id, name, active, number, unit, nextcall, lastcall, failure_count, first_failure, trigger in (
            cr.fetchall()
        )
    ]


# Odoo sessions of this database that hold or ask for a scheduled action's row
# lock (how a cron worker claims a job), or listen for cron triggers: cron
# runners, whichever server they belong to.
_CRON_POLLERS_SQL = """
    SELECT DISTINCT a.application_name, host(a.client_addr), a.datname, left(a.query, %s), a.pid
      FROM pg_stat_activity a
      LEFT JOIN pg_locks l ON l.pid = a.pid AND l.relation = to_regclass('ir_cron') AND l.granted
     WHERE a.application_name ~ '^odoo-[0-9]+$'
       AND a.pid <> pg_backend_pid()
       AND ((a.datname = current_database()
             AND (l.pid IS NOT NULL OR a.query ILIKE '%%FROM ir_cron%%SKIP LOCKED%%'))
            OR a.query ILIKE 'LISTEN cron_trigger%%')
"""


def read_cron_pollers(cr, max_chars=QUERY_MAX_CHARS):
    """Odoo sessions running, claiming or waiting for scheduled actions."""
    cr.execute(_CRON_POLLERS_SQL, (max_chars,))
    return [
        {"application_name": app, "client_addr": addr, "db": db, "query": query, "backend_pid": backend}
        for app, addr, db, query, backend in cr.fetchall()
    ]
