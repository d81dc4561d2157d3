# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Let an API caller name the database on a server that serves several.

Odoo picks a request's database from its session, else the only database
the dbfilter lets through; a monitoring tool with an API key has no session,
so on a server with several databases and no dbfilter Odoo answers it with
its HTML 404 page, before any route runs. For the addon's own paths only,
the database named by the ``db`` parameter or the ``X-Odoo-Database`` header
is used when it exists and the dbfilter accepts it (a logged-in session keeps
its own), and a request that still has no database gets the JSON envelope
saying how to name one.

This acts in every process that imported the addon: all of them when it is
loaded server-wide (``--load=base,web,worker_inspector``), which is what such
a server needs (README, "Several databases"). A server whose configuration
exposes one database (a ``dbfilter`` of one literal name, or ``-d`` naming
one and no filter) serves it to every request: there the override of Odoo's
choice, which runs on every request, could change nothing and is not installed.
"""

import json
import re

from werkzeug.wrappers import Response

from odoo import http
from odoo.service import db as odoo_db
from odoo.tools import config

PREFIX = "/worker_inspector/"
DB_PARAM = "db"
DB_HEADER = "X-Odoo-Database"
# In the raw PATH_INFO of every request to the addon's paths (the server has decoded its
# %-escapes; Odoo's ``path`` only decodes UTF-8 and collapses the leading slashes).
_PATH_WORD = PREFIX.lstrip("/")


def named_database(httprequest):
    return httprequest.args.get(DB_PARAM) or httprequest.headers.get(DB_HEADER) or None


def _served(name):
    return http.db_filter([name]) == [name] and name in odoo_db.list_dbs(True)


# A dbfilter that names one database, whatever the host: ``^prod$``, ``^my\.db$``.
_ONE_NAME_FILTER = re.compile(r"\^(?:[A-Za-z0-9_-]|\\[.-])+\$")


def one_database_by_config(options=config):
    """Whether the configuration alone exposes a single database to every request: a
    dbfilter of one literal name, or else ``-d`` with one name (Odoo's ``db_filter``
    then lets only it through; a comma list in 17.0/18.0, a list in 19.0)."""
    dbfilter = options.get("dbfilter")
    if dbfilter:
        return bool(_ONE_NAME_FILTER.fullmatch(dbfilter))
    names = options.get("db_name") or []
    if isinstance(names, str):
        names = names.split(",")
    return len({name.strip() for name in names if name and name.strip()}) == 1


def _install():
    request_class = http.Request
    if getattr(request_class._serve_nodb, "_worker_inspector", False):
        return
    get_session_and_dbname = request_class._get_session_and_dbname
    serve_nodb = request_class._serve_nodb

    def _get_session_and_dbname(self):
        session, dbname = get_session_and_dbname(self)
        # On every request Odoo serves: a substring test (no call) rules out nearly all;
        # Odoo's ``httprequest.path`` (three Python calls) decides the rest.
        httprequest = self.httprequest
        if _PATH_WORD in httprequest.environ.get("PATH_INFO", "") and httprequest.path.startswith(PREFIX):
            named = named_database(httprequest)
            if named and named != dbname and session.uid is None and _served(named):
                session.db = dbname = named
                session.is_dirty = False  # an API call leaves no session behind
        return session, dbname

    def _serve_nodb(self):
        if not self.httprequest.path.startswith(PREFIX):
            return serve_nodb(self)
        named = named_database(self.httprequest)
        if named:
            reason = f"Database {named!r} is not served here (it does not exist, or the dbfilter refuses it)."
        else:
            reason = (
                f"This server serves several databases: name one with the {DB_PARAM} parameter "
                f"or the {DB_HEADER} header."
            )
        return Response(
            json.dumps({"error": {"status": 400, "reason": reason}}),
            status=400,
            headers=[("Cache-Control", "no-store")],
            content_type="application/json",
        )

    _serve_nodb._worker_inspector = True
    request_class._serve_nodb = _serve_nodb
    if not one_database_by_config():
        _get_session_and_dbname._worker_inspector = True
        request_class._get_session_and_dbname = _get_session_and_dbname


_install()
