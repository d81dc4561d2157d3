# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Where Odoo 17.0, 18.0 and 19.0 differ for this addon: the one place that knows.

Each point was checked in the sources of the three series:

- ``ir.cron._callback``: 17.0 calls it on an empty ``ir.cron`` with the job id
  as a third argument (``cron_name, server_action_id, job_id``); 18.0 and
  19.0 call it on the job's record with two. See :func:`cron_job_id`.
- ``ir.cron.method_direct_trigger`` ("Run Manually"): 17.0 and 18.0 run the
  server action in the request, bypassing ``_callback``; 19.0 runs the job the
  way the scheduler does (``_process_job`` -> ``_run_job`` -> ``_callback``,
  its own transaction, the job locked), so the ``_callback`` hook already sees
  it. See :data:`DIRECT_TRIGGER_CALLS_CALLBACK`.
- The request's database and user on its thread: ``Application.__call__``
  sets ``perf_t0`` and drops the previous ``dbname`` and ``uid`` as each
  request begins (17.0, 18.0, 19.0); ``Registry(db)`` (17.0) or ``_serve_db``
  (18.0+) sets ``dbname``, the request's environment sets ``uid``, and
  ``odoo.service.model`` sets both for XML-RPC. Its local ``request`` holds the
  request (and its cursor) in all three. The recorder reads them there.
- Thread attributes read by ``engine.threads`` (``dbname``, ``uid``, ``url``,
  ``query_count``, ``query_time``, ``perf_t0``, ``type``, ``start_time``):
  same names in all three. ``perf_t0`` is ``time.time()`` up to 18.0 and
  ``real_time()`` in 19.0, the same epoch clock (it escapes freezegun).
  18.0+ add ``cursor_mode``; 19.0's ``rpc_model_method`` is a thread-local,
  unreadable from another thread, so neither is shown.
- Options (``engine.config`` reads them with ``.get``: a missing one is
  ``None``): 17.0 has ``longpolling_port`` (copied into ``gevent_port`` when
  set, so ``gevent_port`` is right on all three); 18.0 adds
  ``limit_memory_*_gevent``, ``limit_time_worker_cron`` and the replica
  options; 19.0 adds ``db_app_name`` (``PGAPPNAME``; default ``odoo-{pid}``,
  the name ``engine.activity`` matches sessions by, cursors match either way),
  ``with_demo`` (for ``without_demo``), drops the hidden ``--xmlrpc-*``
  aliases of the ``http_*`` options, and parses ``db_name`` and
  ``addons_path`` into lists (odoo-debug's probe joins them back). The
  addon reads only ``http_*``, ``gevent_port`` and the limits.
- ``res.users.apikeys._generate`` takes an expiration date since 18.0. See
  :func:`generate_api_key`.
- JS unit tests: QUnit on 17.0, HOOT since 18.0; 19.0 selects a suite with
  ``id=`` (18.0: ``suite=``) and ends with "Test suite succeeded" (18.0:
  "test suite succeeded"). See :data:`HAS_HOOT`.
- JS: 17.0 transpiles only files that start with ``/** @odoo-module **/``
  (18.0+ every file of ``static/``), so every JS file of the addon has it.
- Translations: ``env._`` exists since 18.0; 17.0 has ``odoo._`` only. See
  :func:`gettext`.
- ``odoo`` is a namespace package in 19.0: no ``odoo/__init__.py``, so no
  ``odoo.__file__``; locate it with ``importlib.util.find_spec``.
- SIGHUP (reload): up to 18.0 the prefork master stops its workers and
  re-executes itself; 19.0 forks first, the new master re-executes in the
  same process (same pid and start time) keeping the listening socket, and
  the fork stops the old workers. The server's identity (pid, start) stays
  the same on every series, so the activity board of a server survives a
  reload; the old workers' records go when they exit. (The re-execution
  runs the ``python`` found on PATH: run Odoo from an activated venv.)
- ``ir.profile``'s speedscope JSON: 17.0 and 18.0 compute the ``speedscope``
  field from the stored traces; 19.0 computes it from context parameters (no
  view selected without them) and generates it with
  ``_generate_speedscope(params)``, its speedscope page embedding the result
  (``speedscope_base64``) where 17.0/18.0 give the page the profile to fetch.
  See :func:`speedscope_json`.
- Nothing here reads Odoo's line numbers (``Worker.check_limits``,
  ``process_timeout``): odoo-debug's limits are checked by value.
"""

import base64

from odoo import release

SERIES = tuple(release.version_info[:2])

# 19.0: "Run Manually" goes through ``_callback`` (recorded there).
DIRECT_TRIGGER_CALLS_CALLBACK = SERIES >= (19, 0)


def cron_job_id(cron, callback_args):
    """The id of the job ``ir.cron._callback`` runs: ``callback_args`` are
    its arguments after ``cron_name, server_action_id`` (17.0: ``(job_id,)``)."""
    if callback_args:
        return callback_args[0]
    return cron.id if len(cron) == 1 else None


def gettext(env):
    """The translation function: ``env._`` (18.0+); 17.0 has only ``_``, which
    finds the language in its caller's frame (``self.env``)."""
    translate = getattr(env, "_", None)
    if translate is None:
        from odoo.tools.translate import _ as translate
    return translate


def generate_api_key(apikeys, name, scope=None):
    """A new API key of ``apikeys``' user: ``res.users.apikeys._generate`` takes
    an expiration date since 18.0 (none here: a key that does not expire)."""
    if SERIES >= (18, 0):
        return apikeys._generate(scope, name, None)
    return apikeys._generate(scope, name)


# The web client's JS unit tests: QUnit on 17.0, HOOT since 18.0, whose
# end-of-suite message gained a capital in 19.0 (what the test waits for).
HAS_HOOT = SERIES >= (18, 0)
HOOT_SUCCESS_SIGNAL = "[HOOT] Test suite succeeded" if SERIES >= (19, 0) else "[HOOT] test suite succeeded"
# The URL parameter that selects a suite by its hash: ``id`` in 19.0, ``suite`` in 18.0.
HOOT_FILTER_PARAM = "id" if SERIES >= (19, 0) else "suite"


def speedscope_json(profile):
    """The speedscope JSON (bytes) of one ``ir.profile``, with Odoo's default views."""
    if hasattr(profile, "_generate_speedscope"):  # 19.0
        return profile._generate_speedscope(profile._parse_params(profile._default_profile_params()))
    return base64.b64decode(profile.speedscope)


def loaded_registries(registry_class):
    """``(name, registry)`` of the registries loaded in this process.

    Read from the LRU's dict without its lock (17.0's LRU has no iterator, and
    a thread holding that lock when a prefork master forks would leave it held
    in the child); a change meanwhile raises RuntimeError, to try again later.
    The dict is ``d`` up to 18.0, ``_values`` since 19.0.
    """
    lru = registry_class.registries
    values = lru._values if SERIES >= (19, 0) else lru.d
    return list(values.items())
