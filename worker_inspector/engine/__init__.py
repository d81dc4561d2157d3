"""Read an Odoo server's processes, threads and limits.

This package never imports ``odoo``: the addon's models and controllers are
thin wrappers over it, and the launcher, the tests and the benchmarks use it
on its own.
"""

from .classify import (
    ROLE_CRON,
    ROLE_GEVENT,
    ROLE_HTTP,
    ROLE_MASTER,
    ROLE_SERVER,
    ROLES,
    THREAD_KINDS,
    classify_child,
    is_odoo_cmdline,
    parse_title,
    thread_kind,
)
from .config import effective_config, effective_memory_limits, redact_cmdline
from .host import read_host
from .recycle import RECYCLABLE_ROLES, RecycleRefused, recycle_worker
from .snapshot import MODE_PREFORK, MODE_THREADED, ServerInfo, add_logins, name_users, take_snapshot
from .vocabulary import (
    WORKER_ROLES,
    WORKER_THREAD_KINDS,
    ActivityKind,
    ActivityState,
    Mode,
    Role,
    ThreadKind,
    UtilizationBasis,
    is_recyclable,
)
from .threads import read_threads
from .tree import child_pids, read_processes
