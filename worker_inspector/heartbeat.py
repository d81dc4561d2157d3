# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The node's heartbeat: a daemon thread, off every request's path.

It runs in each process of a server that imported the addon (in prefork, the
master when it preloads the database, else the workers that loaded it): the
master's thread outlives any worker recycling; among several threads of one
node, the database picks one writer per beat (``engine.nodes.claim_beat``).

It publishes into every database whose registry this process has loaded with
the addon installed (the ``-d``/``db_name`` databases in a preloading master),
on a connection of its own, opened per beat: never a lock or a connection of
Odoo's pool, so a fork while it beats leaves the child nothing to inherit.
"""

import logging
import random
import socket
import threading
import time

import psycopg2

import odoo
from odoo.modules.registry import Registry
from odoo.service import server as odoo_server
from odoo.tools import config

from . import compat, engine
from .engine import nodes
from .engine.activity import scope_to_database
from .post_load import own_connection

_logger = logging.getLogger(__name__)

INTERVAL_OPTION = "worker_inspector_heartbeat_interval"
RETENTION_OPTION = "worker_inspector_node_retention"

_started = threading.Lock()
_thread = None


def interval():
    try:
        return max(float(config.get(INTERVAL_OPTION) or nodes.HEARTBEAT_INTERVAL), 1.0)
    except (TypeError, ValueError):
        return nodes.HEARTBEAT_INTERVAL


def retention():
    try:
        return max(float(config.get(RETENTION_OPTION) or nodes.RETENTION), 60.0)
    except (TypeError, ValueError):
        return nodes.RETENTION


def published_databases():
    """Databases this process publishes into: loaded registries with the addon."""
    names = []
    for name, registry in compat.loaded_registries(Registry):
        if getattr(registry, "ready", False) and "worker.inspector.audit" in registry.models:
            names.append(name)
    return sorted(names)


def beat_once(dbname, server, take_snapshot):
    """One beat into ``dbname``: claim, publish, run pending commands. Returns True when published."""
    node = nodes.this_node(server)
    every = interval()
    conn = own_connection(dbname)
    try:
        with conn, conn.cursor() as cr:
            if not nodes.claim_beat(cr, node, socket.gethostname(), server, every):
                return False
        with conn, conn.cursor() as cr:
            done = nodes.run_pending(cr, server)
        for command_id, state, result in done:
            _logger.info("Node command %s: %s %s", command_id, state, result)
        snapshot = take_snapshot(server)
        # The advice as this database's snapshot computes it (server-wide, before scoping).
        with conn, conn.cursor() as cr:
            snapshot["advice_levels"] = _advice_levels(cr, dbname, snapshot)
        if not _server_wide():
            # What a node publishes into a database, only that database's admins read.
            scope_to_database(snapshot, dbname, several_databases=True)
        with conn, conn.cursor() as cr:
            nodes.publish(cr, node, nodes.summarize(snapshot), nodes.public_processes(snapshot), every, retention())
        return True
    finally:
        conn.close()


def _server_wide():
    from .models.worker_inspector import SERVER_WIDE_OPTION

    return str(config.get(SERVER_WIDE_OPTION) or "").lower() in ("1", "true", "yes")


def _snapshot(server):
    from .engine import history as history_mod
    from .models import history
    from .post_load import fresh_board

    fresh_board(server)
    # Exits of workers killed since the sampler's last look (a second ago at most) too.
    history.harvest()
    snapshot = engine.take_snapshot(server, config.options, threads=[])
    # The history's view of the node: exits in the last hour, the listen backlog now.
    store, sampler = history.history_store(), history.STATE.sampler
    exits = store.exits(snapshot["taken_at"] - 3600) if store is not None else []
    snapshot["exits_last_hour"] = history_mod.summarize_exits(exits or [])
    snapshot["backlog"] = sampler.backlog() if sampler is not None else None
    return snapshot


def _advice_levels(cr, dbname, snapshot):
    """The summary's ``advice_levels`` (``engine.advice.advice_levels``), from the facts the
    snapshot's advice uses, read on the beat's connection; None when PostgreSQL refuses."""
    from .engine import advice, database
    from .models.worker_inspector import advice_facts

    try:
        postgres = dict(database.read_postgres_limits(cr), sessions=database.read_pg_sessions(cr))
        overdue = database.read_overdue_crons(cr, db=dbname)
        facts = advice_facts(snapshot, postgres, overdue, cr=cr)
    except psycopg2.Error:
        _logger.debug("Worker inspector: no advice in this heartbeat", exc_info=True)
        cr.connection.rollback()
        return None
    return advice.advice_levels(advice.advise(facts))


def _current_server():
    from .post_load import current_server

    return current_server()


def _loop():
    engine.threads.name_os_thread(engine.threads.OS_HEARTBEAT)
    # A first beat soon after start; then a little under the interval, so that
    # one writer beats every time, and several processes of a node (each at its
    # own jittered pace) leave a beat late by a fraction of an interval at most.
    time.sleep(random.uniform(0.5, 2.0))
    announced = set()
    while True:
        try:
            # A shell, an install with --stop-after-init: no server, no node.
            server = _current_server() if odoo_server.server is not None else None
            databases = published_databases() if server else ()
        except Exception:  # the registries changed meanwhile: next time
            _logger.debug("Worker inspector: no heartbeat this time", exc_info=True)
            databases = ()
        for dbname in databases:
            try:
                beat_once(dbname, server, _snapshot)
                if dbname not in announced:
                    announced.add(dbname)
                    node = nodes.this_node(server)
                    _logger.info("Worker inspector: node %s publishes heartbeats into %s", node, dbname)
            except Exception:  # a beat never ends the thread
                _logger.warning("Worker inspector: heartbeat into %s failed", dbname, exc_info=True)
        time.sleep(interval() * random.uniform(0.9, 1.0))


def start():
    """Start this process's heartbeat thread (once; not in the gevent process)."""
    global _thread
    if odoo.evented:
        return
    with _started:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_loop, name="worker_inspector.heartbeat", daemon=True)
        _thread.start()
