"""Sizing and configuration advice from what the inspector measures.

``advise(facts)`` is pure: it takes a ``Facts`` (the configuration, the host,
the processes of a snapshot, PostgreSQL's limits, the history when there is
one) and returns the snapshot's ``advice`` list, one item per check, in a
fixed order: ``{"id", "level", "title", "detail", "fix"}``. Every rule, its
source and when to ignore it is in the README ("Advice").
"""

from dataclasses import dataclass, field

from .config import effective_memory_limits

LEVEL_OK = "ok"
LEVEL_INFO = "info"
LEVEL_WARNING = "warning"
LEVEL_CRITICAL = "critical"
LEVELS = (LEVEL_OK, LEVEL_INFO, LEVEL_WARNING, LEVEL_CRITICAL)
NOTHING_TO_DO = "nothing to do"
NO_HISTORY = "no history yet"
# Set by odoo-debug in the environment of the Odoo it starts.
DEBUG_SESSION_ENV = "WORKER_INSPECTOR_DEBUG_SESSION"

CHECK_IDS = (
    "workers_vs_cpus",
    "workers_vs_memory",
    "memory_hard_vs_ram",
    "memory_soft_vs_usage",
    "threaded_in_production",
    "cron_threads",
    "db_maxconn_vs_postgres",
    "time_limits_vs_requests",
    "websocket_routing",
)
# Odoo's defaults (odoo/tools/config.py), for a config that leaves them out.
DEFAULTS = {
    "workers": 0,
    "max_cron_threads": 2,
    "limit_memory_soft": 2048 * 1024 * 1024,
    "limit_memory_hard": 2560 * 1024 * 1024,
    "limit_time_cpu": 60,
    "limit_time_real": 120,
    "db_maxconn": 64,
}
MIB = 1024 * 1024
# Saturation: the share of the window all HTTP workers were busy above which
# requests waited for a worker.
ALL_BUSY_WARNING = 0.05
# Soft-limit recycling: more exits on the soft limit than this share of requests.
SOFT_EXITS_WARNING = 0.01
# A limit_time_real above this lets a stuck worker hold its slot for too long.
TIME_REAL_TOO_HIGH = 3600
# Overdue (seconds) while cron is on, beyond a cron worker's polling (60 s).
OVERDUE_GRACE = 300
# Fraction of RAM the workers may take (the page cache and the rest need some).
RAM_HEADROOM = 0.9


@dataclass
class Facts:
    """What the checks read. Unknown facts stay ``None``.

    ``processes``: the snapshot's processes (role, rss, vms); empty when no
    server runs (``odoo-debug --check``). ``postgres``: ``max_connections``,
    ``reserved`` (superuser_reserved_connections), ``in_use`` (connections
    now), ``local`` (on this host), ``shared_buffers`` (bytes), ``nodes``
    (Odoo servers on the database). ``history``: what the history store
    measured over ``window`` seconds, or None (see README, "Advice").
    """

    config: dict
    mode: str = None
    cpu_count: int = None
    memory_total: int = None
    processes: list = field(default_factory=list)
    debug_session: bool = False
    postgres: dict = None
    history: dict = None
    databases: int = None
    overdue_crons: list = None
    longest_busy: float = None
    websocket_on_http: int = 0
    forwarded_headers: bool = False
    running: bool = True


def _item(check_id, level, title, detail, fix=NOTHING_TO_DO):
    return {"id": check_id, "level": level, "title": title, "detail": detail, "fix": fix}


def _threaded_limits(check_id, what):
    return _item(
        check_id, LEVEL_INFO, f"Threaded server: no {what} limit", f"Odoo enforces {what} limits on workers only."
    )


def _opt(config, key):
    value = config.get(key)
    if value is None or value is False or value == "":  # 0 is a value (0 == False)
        return DEFAULTS.get(key, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return DEFAULTS.get(key, 0)


def _mib(value):
    return f"{value / MIB:.0f} MiB"


def _prefork(facts):
    return _opt(facts.config, "workers") > 0


def _role(facts, role):
    return [p for p in facts.processes if p.get("role") == role]


def process_count(config):
    """``(processes, detail)`` a prefork server runs: HTTP workers, cron
    workers, the gevent process and the master."""
    workers = _opt(config, "workers")
    crons = _opt(config, "max_cron_threads")
    return workers + crons + 2, f"{workers} HTTP + {crons} cron workers + gevent + master"


def check_workers_vs_cpus(facts):
    cid, workers, cpus = "workers_vs_cpus", _opt(facts.config, "workers"), facts.cpu_count
    if not workers:
        return _item(cid, LEVEL_INFO, "Threaded server: no workers", "workers = 0 (see threaded_in_production).")
    if not cpus:
        return _item(cid, LEVEL_INFO, "CPU count unknown", f"workers = {workers}; the CPU count could not be read.")
    rule = 2 * cpus + 1
    detail = f"workers = {workers}, {cpus} CPUs, rule of thumb 2 x CPUs + 1 = {rule}."
    history = facts.history
    if history:
        all_busy = history.get("all_busy_ratio") or 0.0
        backlog = history.get("backlog_max") or 0
        cpu_ratio = history.get("cpu_ratio")
        detail += (
            f" Over {history.get('window', 0) / 3600:.1f} h: utilization max {history.get('utilization_max')},"
            f" all workers busy {all_busy:.1%} of the time, backlog max {backlog}"
        )
        if cpu_ratio is not None:
            detail += f", requests spend {cpu_ratio:.0%} of their time on CPU"
        detail += "."
        if all_busy > ALL_BUSY_WARNING or backlog:
            if cpu_ratio is not None and cpu_ratio > 0.5 and workers >= rule:
                return _item(
                    cid,
                    LEVEL_WARNING,
                    "Saturated and CPU-bound: more workers will not help",
                    detail + " The CPUs are the limit: add CPUs or make the slow requests cheaper.",
                )
            return _item(
                cid,
                LEVEL_WARNING,
                "Requests wait for a free worker",
                detail + " Requests are mostly waiting (I/O): more workers help if RAM allows (workers_vs_memory).",
                f"workers = {max(workers + 2, rule)}",
            )
    if workers < cpus:
        return _item(
            cid,
            LEVEL_WARNING,
            "Fewer workers than CPUs",
            detail + " Cores stay idle and one slow request blocks a worker in a few.",
            f"workers = {rule}",
        )
    if workers < rule:
        return _item(
            cid,
            LEVEL_INFO,
            "Fewer workers than 2 x CPUs + 1",
            detail + (" " + NO_HISTORY + ": saturation unknown." if not history else ""),
            f"workers = {rule}",
        )
    if workers > 2 * rule and history and (history.get("cpu_ratio") or 0) > 0.5:
        return _item(
            cid,
            LEVEL_INFO,
            "Many workers for CPU-bound requests",
            detail + " CPU-bound requests gain nothing from more workers than CPUs can run.",
            f"workers = {rule}",
        )
    return _item(cid, LEVEL_OK, "Workers fit the CPUs", detail)


def _postgres_share(facts):
    pg = facts.postgres or {}
    return int(pg.get("shared_buffers") or 0) if pg.get("local") else 0


def check_workers_vs_memory(facts):
    cid = "workers_vs_memory"
    if not _prefork(facts):
        return _item(cid, LEVEL_INFO, "Threaded server", "workers = 0: one process holds everything.")
    http = [p for p in _role(facts, "http") if p.get("rss")]
    if not http or not facts.memory_total:
        return _item(
            cid,
            LEVEL_INFO,
            "Worker memory not measured",
            "The RAM a worker needs is measured on a running server (not guessed from a config file).",
        )
    workers = _opt(facts.config, "workers")
    per_worker = max(p["rss"] for p in http)
    if facts.history and facts.history.get("rss_max"):
        per_worker = max(per_worker, facts.history["rss_max"])
    others = sum(p.get("rss") or 0 for p in facts.processes if p.get("role") in ("cron", "gevent", "master"))
    pg_share = _postgres_share(facts)
    budget = facts.memory_total * RAM_HEADROOM - others - pg_share
    holds = max(int(budget // per_worker), 0)
    detail = (
        f"RAM {_mib(facts.memory_total)}; largest HTTP worker RSS {_mib(per_worker)}; cron workers, gevent and"
        f" master {_mib(others)}; PostgreSQL shared_buffers {_mib(pg_share)} (local: "
        f"{bool((facts.postgres or {}).get('local'))}); {RAM_HEADROOM:.0%} of RAM holds {holds} HTTP workers,"
        f" workers = {workers}."
    )
    if workers > holds:
        return _item(cid, LEVEL_CRITICAL, "The RAM does not hold the workers", detail, f"workers = {max(holds, 1)}")
    if workers > holds * 0.8:
        return _item(
            cid, LEVEL_WARNING, "The workers nearly fill the RAM", detail, f"workers = {max(holds * 8 // 10, 1)}"
        )
    return _item(cid, LEVEL_OK, "The RAM holds the workers", detail)


def check_memory_hard_vs_ram(facts):
    cid = "memory_hard_vs_ram"
    if not _prefork(facts):
        return _threaded_limits(cid, "memory")
    _soft, hard = effective_memory_limits(facts.config, "http")
    if "limit_memory_hard" not in facts.config:
        hard = DEFAULTS["limit_memory_hard"]
    _gsoft, hard_gevent = effective_memory_limits(dict(facts.config, limit_memory_hard=hard), "gevent")
    count, counted = process_count(facts.config)
    if not hard:
        return _item(
            cid,
            LEVEL_WARNING,
            "No hard memory limit",
            f"limit_memory_hard = 0: a runaway worker grows until the OOM killer picks a process ({counted}).",
            f"limit_memory_hard = {DEFAULTS['limit_memory_hard']}",
        )
    if not facts.memory_total:
        return _item(cid, LEVEL_INFO, "Host RAM unknown", f"limit_memory_hard = {hard}.")
    # The master sets no limit on itself; gevent has its own.
    total = hard * (count - 2) + hard_gevent
    detail = (
        f"limit_memory_hard {_mib(hard)} x {count - 2} workers + gevent {_mib(hard_gevent)} = {_mib(total)}"
        f" against {_mib(facts.memory_total)} of RAM ({counted})."
    )
    fit = int((facts.memory_total * RAM_HEADROOM) // max(count - 1, 1))
    if total > facts.memory_total:
        return _item(
            cid,
            LEVEL_CRITICAL,
            "Hard limit x processes exceeds the RAM",
            detail + " The OOM killer strikes before Odoo's limit does.",
            f"limit_memory_hard = {fit}",
        )
    if total > facts.memory_total * RAM_HEADROOM:
        return _item(cid, LEVEL_WARNING, "Hard limit x processes near the RAM", detail, f"limit_memory_hard = {fit}")
    return _item(cid, LEVEL_OK, "Hard limits fit in RAM", detail)


def check_memory_soft_vs_usage(facts):
    cid = "memory_soft_vs_usage"
    if not _prefork(facts):
        return _threaded_limits(cid, "memory")
    config = dict(DEFAULTS, **{k: v for k, v in facts.config.items() if v is not None and v is not False})
    soft, hard = effective_memory_limits(config, "http")
    if not soft:
        return _item(
            cid,
            LEVEL_WARNING,
            "No soft memory limit",
            "limit_memory_soft = 0: workers are never recycled, a leak grows until the hard limit kills a request.",
            f"limit_memory_soft = {DEFAULTS['limit_memory_soft']}",
        )
    detail = f"limit_memory_soft {_mib(soft)}, limit_memory_hard {_mib(hard)}"
    if hard and soft >= hard:
        return _item(
            cid,
            LEVEL_WARNING,
            "Soft limit not below the hard limit",
            detail + ": the hard limit stops a request before the worker is recycled gracefully.",
            f"limit_memory_soft = {hard * 4 // 5}",
        )
    # Odoo checks the soft limit on virtual memory (psutil vms) after each request.
    vms = [p["vms"] for p in _role(facts, "http") if p.get("vms")]
    if vms:
        detail += f"; HTTP workers' virtual memory now up to {_mib(max(vms))}"
    history = facts.history
    if history and history.get("requests"):
        exits = (history.get("exits") or {}).get("memory_soft", 0)
        detail += f"; {exits} soft-limit exits for {history['requests']} requests"
        if exits / history["requests"] > SOFT_EXITS_WARNING:
            return _item(
                cid,
                LEVEL_WARNING,
                "Workers recycled every few requests",
                detail + ": the soft limit is below what a worker normally needs.",
                f"limit_memory_soft = {int(soft * 1.5)}",
            )
    elif vms and max(vms) > soft:
        return _item(
            cid,
            LEVEL_WARNING,
            "Workers above the soft limit",
            detail + ": each is recycled after its next request.",
            f"limit_memory_soft = {int(max(vms) * 1.25)}",
        )
    if not history:
        detail += f"; {NO_HISTORY} of exits"
    return _item(cid, LEVEL_OK, "Soft limit fits the workers", detail + ".")


def check_threaded_in_production(facts):
    cid = "threaded_in_production"
    if _prefork(facts):
        return _item(cid, LEVEL_OK, "Multi-process server", f"workers = {_opt(facts.config, 'workers')}.")
    if facts.debug_session or facts.config.get("dev_mode"):
        return _item(cid, LEVEL_OK, "Threaded debug session", "workers = 0 in a debug session (odoo-debug or --dev).")
    cpus = facts.cpu_count or 1
    return _item(
        cid,
        LEVEL_WARNING,
        "Threaded server outside debugging",
        "workers = 0: one process, so one core runs Python (the GIL), no memory or time limit stops a runaway"
        f" request, and cron runs in the same process. This host has {cpus} CPUs.",
        f"workers = {2 * cpus + 1}",
    )


def check_cron_threads(facts):
    cid = "cron_threads"
    threads = _opt(facts.config, "max_cron_threads")
    if not threads:
        if facts.debug_session:
            return _item(cid, LEVEL_OK, "Cron off for debugging", "max_cron_threads = 0 in a debug session.")
        late = len(facts.overdue_crons or [])
        return _item(
            cid,
            LEVEL_WARNING,
            "No scheduled action runs",
            f"max_cron_threads = 0 outside a debug session: no scheduled action runs ({late} overdue now).",
            "max_cron_threads = 2",
        )
    detail = f"max_cron_threads = {threads}"
    if facts.databases:
        detail += f", {facts.databases} database(s)"
    overdue = [c for c in facts.overdue_crons or [] if (c.get("overdue") or 0) > OVERDUE_GRACE]
    if overdue:
        worst = max(c["overdue"] for c in overdue)
        return _item(
            cid,
            LEVEL_WARNING,
            "Scheduled actions overdue while cron is on",
            detail + f": {len(overdue)} scheduled action(s) overdue by more than {OVERDUE_GRACE} s"
            f" (up to {worst:.0f} s). The cron workers do not keep up (or one job runs for long).",
            f"max_cron_threads = {threads + 1}",
        )
    if facts.databases and facts.databases > threads:
        return _item(
            cid,
            LEVEL_INFO,
            "Fewer cron workers than databases",
            detail + ": the cron workers take the databases in turn; a long job delays the others.",
            f"max_cron_threads = {min(facts.databases, threads + 2)}",
        )
    return _item(
        cid, LEVEL_OK, "Cron keeps up", detail + ("." if facts.overdue_crons is not None else "; due jobs not known.")
    )


def connections_needed(config):
    """``(connections, detail)``: what the server may open at most, per node."""
    maxconn = _opt(config, "db_maxconn")
    if not _opt(config, "workers"):
        return maxconn, f"db_maxconn {maxconn} x 1 process"
    workers, crons = _opt(config, "workers"), _opt(config, "max_cron_threads")
    gevent = int(config.get("db_maxconn_gevent") or maxconn)
    # The master opens none once the workers run; every worker and gevent has its own pool.
    total = maxconn * (workers + crons) + gevent
    return total, f"db_maxconn {maxconn} x ({workers} HTTP + {crons} cron workers) + gevent {gevent}"


def check_db_maxconn_vs_postgres(facts):
    cid = "db_maxconn_vs_postgres"
    pg = facts.postgres or {}
    needed, counted = connections_needed(facts.config)
    nodes = max(int(pg.get("nodes") or 1), 1)
    if not pg.get("max_connections"):
        return _item(
            cid,
            LEVEL_INFO,
            "PostgreSQL not reached",
            f"Odoo may open {needed} connections ({counted}); PostgreSQL's max_connections is unknown"
            + (f": {pg['error']}" if pg.get("error") else "."),
        )
    available = int(pg["max_connections"]) - int(pg.get("reserved") or 0)
    total = needed * nodes
    in_use = int(pg.get("in_use") or 0)
    own = int(pg.get("own") or 0)
    others = max(in_use - own, 0)
    detail = (
        f"{counted} = {needed} per server x {nodes} server(s) = {total}; PostgreSQL max_connections"
        f" {pg['max_connections']} - {pg.get('reserved') or 0} reserved = {available}; {in_use} in use now,"
        f" {others} of them not this server's."
    )
    per_process = max((available // nodes - 4) // max(process_count(facts.config)[0] - 1, 1), 2)
    if total > available:
        return _item(
            cid,
            LEVEL_CRITICAL,
            "Odoo may open more connections than PostgreSQL allows",
            detail + " Under load, requests fail with 'too many connections'.",
            f"db_maxconn = {per_process}",
        )
    if total + others > available:
        return _item(
            cid,
            LEVEL_WARNING,
            "Odoo and the other clients may exceed max_connections",
            detail,
            f"db_maxconn = {per_process}",
        )
    return _item(cid, LEVEL_OK, "Connections fit PostgreSQL", detail)


def check_time_limits_vs_requests(facts):
    cid = "time_limits_vs_requests"
    if not _prefork(facts):
        return _threaded_limits(cid, "time")
    real, cpu = _opt(facts.config, "limit_time_real"), _opt(facts.config, "limit_time_cpu")
    detail = f"limit_time_real {real} s, limit_time_cpu {cpu} s"
    history = facts.history or {}
    p99, worst = history.get("request_p99"), history.get("request_max")
    if p99 is not None:
        detail += f"; requests p99 {p99:.1f} s, max {worst or p99:.1f} s"
    elif worst is not None:
        p99 = worst  # the history's longest busy request at a sample: what the limit is compared with
        detail += f"; longest request seen {worst:.1f} s (sampled, last hour)"
    elif facts.longest_busy is not None:
        detail += f"; longest busy now {facts.longest_busy:.1f} s ({NO_HISTORY})"
    else:
        detail += f" ({NO_HISTORY})"
    killed = (history.get("exits") or {}).get("time_limit", 0)
    if killed:
        detail += f", {killed} worker(s) killed on a time limit"
    if not real or real > TIME_REAL_TOO_HIGH:
        return _item(
            cid,
            LEVEL_WARNING,
            "A stuck worker is never freed",
            detail + f": above {TIME_REAL_TOO_HIGH} s (or 0) a stuck request holds its worker for good.",
            "limit_time_real = 120",
        )
    if p99 is not None and (p99 > real * 0.8 or (history.get("exits") or {}).get("time_limit")):
        return _item(
            cid,
            LEVEL_WARNING,
            "Requests are killed by the time limit",
            detail + ": slow requests reach the limit and are killed (the user sees an error).",
            f"limit_time_real = {int(max(worst or 0, p99) * 1.5) + 1}",
        )
    if cpu and cpu > real:
        return _item(
            cid,
            LEVEL_INFO,
            "CPU limit above the real-time limit",
            detail + ": limit_time_cpu never applies.",
            f"limit_time_cpu = {real // 2}",
        )
    return _item(cid, LEVEL_OK, "Time limits fit the requests", detail + ".")


def check_websocket_routing(facts):
    cid = "websocket_routing"
    if facts.forwarded_headers and not facts.config.get("proxy_mode"):
        return _item(
            cid,
            LEVEL_WARNING,
            "Behind a proxy without proxy_mode",
            "Requests carry X-Forwarded-* headers but proxy_mode is off: Odoo sees the proxy's address and"
            " scheme (wrong redirects, IP-based rules and logs).",
            "proxy_mode = True",
        )
    if not _prefork(facts):
        return _item(cid, LEVEL_OK, "Threaded server serves websockets itself", "workers = 0.")
    if facts.websocket_on_http:
        return _item(
            cid,
            LEVEL_WARNING,
            "Websockets reach HTTP workers",
            f"{facts.websocket_on_http} /websocket request(s) on HTTP workers: the proxy does not route"
            f" /websocket to the gevent port ({_opt(facts.config, 'gevent_port') or 8072}); each holds a worker.",
            "proxy: location /websocket { proxy_pass http://odoo-gevent; }",
        )
    detail = "No /websocket request seen on an HTTP worker" + ("" if facts.running else " (no server running)")
    return _item(cid, LEVEL_OK, "Websockets routed to gevent", detail + ".")


CHECKS = (
    check_workers_vs_cpus,
    check_workers_vs_memory,
    check_memory_hard_vs_ram,
    check_memory_soft_vs_usage,
    check_threaded_in_production,
    check_cron_threads,
    check_db_maxconn_vs_postgres,
    check_time_limits_vs_requests,
    check_websocket_routing,
)


def advise(facts):
    """The advice list, one item per check (``CHECK_IDS`` order)."""
    return [check(facts) for check in CHECKS]


def worst_level(advice):
    return max((item["level"] for item in advice), key=LEVELS.index, default=LEVEL_OK)


def advice_levels(advice):
    """What a node's heartbeat summary carries of its advice: the worst level, the count of items
    per level (every level, 0 included) and the ids of the warning and critical items."""
    counts = dict.fromkeys(LEVELS, 0)
    for item in advice:
        counts[item["level"]] += 1
    alerts = [item["id"] for item in advice if item["level"] in (LEVEL_WARNING, LEVEL_CRITICAL)]
    return {"worst": worst_level(advice), "counts": counts, "alerts": alerts}


def exit_status(advice):
    """0 when nothing is a warning, 1 for a warning, 2 for a critical item."""
    return {LEVEL_CRITICAL: 2, LEVEL_WARNING: 1}.get(worst_level(advice), 0)


def websocket_requests_on_http(snapshot):
    """HTTP workers now serving a /websocket request (prefork)."""
    return sum(
        1
        for p in snapshot.get("processes") or []
        if p.get("role") == "http" and ((p.get("activity") or {}).get("url") or "").startswith("/websocket")
    )


def history_facts(points, interval, totals):
    """The ``history`` facts from the history store (``HistoryStore.points`` and
    ``totals``), or None when it has fewer than two points ("no history yet").

    ``cpu_ratio`` is the HTTP workers' CPU seconds (their sampled CPU %) per
    second they were busy: near 1 the requests are CPU-bound, near 0 they
    wait (PostgreSQL, I/O). The store keeps no per-request times:
    ``request_max`` is the longest busy request or job seen at a sample, a
    lower bound.
    """
    if len(points) < 2:
        return None
    window = points[-1]["t"] - points[0]["t"] + interval
    utilization = [p["utilization"] for p in points if p["utilization"] is not None]
    busy_seconds = sum(p["http_busy"] for p in points) * interval
    longest = [p["longest_busy"] for p in points if p["longest_busy"] is not None]
    http = [q for p in points for q in p["processes"] if q["role"] == "http"]
    rss = [q["rss"] for q in http if q["rss"]]
    cpu_seconds = sum(q["cpu_percent"] or 0.0 for q in http) / 100 * interval
    exits = dict(totals.get("exits") or {})
    exits["time_limit"] = exits.get("time_cpu", 0) + exits.get("time_real", 0)
    return {
        "window": window,
        "utilization_max": max(utilization) if utilization else None,
        "all_busy_ratio": (points[-1]["all_busy_seconds"] - points[0]["all_busy_seconds"]) / window,
        "backlog_max": max(p["backlog"] for p in points),
        "cpu_ratio": min(cpu_seconds / busy_seconds, 1.0) if busy_seconds else None,
        "rss_max": max(rss) if rss else None,
        "requests": totals.get("http_requests") or 0,
        "exits": exits,
        "request_p99": None,
        "request_max": max(longest) if longest else None,
    }


def facts_from_snapshot(
    snapshot,
    postgres=None,
    history=None,
    debug_session=False,
    databases=None,
    overdue_crons=None,
    forwarded_headers=False,
):
    """The facts of a running server's snapshot."""
    host = snapshot.get("host") or {}
    return Facts(
        config=snapshot.get("config") or {},
        mode=(snapshot.get("server") or {}).get("mode"),
        cpu_count=host.get("cpu_count"),
        memory_total=host.get("memory_total"),
        processes=snapshot.get("processes") or [],
        debug_session=debug_session,
        postgres=postgres,
        history=history,
        databases=databases,
        overdue_crons=overdue_crons,
        longest_busy=snapshot.get("longest_busy"),
        websocket_on_http=websocket_requests_on_http(snapshot),
        forwarded_headers=forwarded_headers,
    )


def format_advice(advice):
    """Plain text for a terminal, one block per item."""
    lines = []
    for item in advice:
        lines.append(f"[{item['level'].upper():8}] {item['id']}: {item['title']}")
        lines.append(f"           {item['detail']}")
        if item["fix"] != NOTHING_TO_DO:
            lines.append(f"           fix: {item['fix']}")
    return "\n".join(lines) + "\n"
