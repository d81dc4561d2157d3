"""The JSON API's shape, declared once (see README, "JSON API").

``take_snapshot`` builds a ``Snapshot``: ``tree`` reads the processes,
``threads`` the threads, ``activity`` adds what they are doing, ``add_logins``
names users. These declarations are what each of them fills in; the words in
the string fields are those of ``vocabulary``.
"""

from typing import TypedDict

from .vocabulary import ActivityKind, ActivityState, Mode, Role, ThreadKind, UtilizationBasis


class CronJob(TypedDict):
    id: int
    name: str
    db: str


class Activity(TypedDict):
    """What a process or thread is doing (from its board record)."""

    state: ActivityState
    kind: ActivityKind | None  # what it did last; None: nothing yet
    since: float  # epoch: start of the request or job, or of the idleness
    elapsed: float  # taken_at - since
    db: str | None
    uid: int | None
    login: str | None
    url: str | None  # path only
    requests: int  # requests begun by the process (by the thread, under threads)
    cron_job: CronJob | None
    hidden: bool  # another database's: db, user, URL and job are withheld (activity.scope_to_database)
    observer: bool  # the request taking this snapshot: not counted busy


class SqlSession(TypedDict, total=False):
    backend_pid: int
    db: str
    state: str  # pg_stat_activity.state
    wait_event_type: str | None
    wait_event: str | None
    duration: float
    query: str  # first 300 characters
    matched_by: str  # "cursor" | "application_name"


class Process(TypedDict):
    pid: int
    ppid: int
    role: Role
    started_at: float
    cpu_percent: float | None
    cpu_seconds: float  # CPU time (user + system) since the process started
    rss: int
    vms: int
    num_threads: int
    limit_memory_soft: int  # 0: none
    limit_memory_hard: int
    nice: int | None
    status: str
    cmdline: str  # redacted
    recyclable: bool  # vocabulary.is_recyclable
    worker: bool  # serves requests or runs jobs: a scoreboard cell (prefork)
    activity: Activity | None  # None: not reporting
    sql: list[SqlSession]


class Thread(TypedDict):
    """A thread of the process that answered."""

    ident: int
    native_id: int | None  # the kernel's thread id, as the scoreboard shows it
    name: str
    kind: ThreadKind
    worker: bool  # serves requests or runs jobs: a scoreboard cell (threaded)
    daemon: bool
    db: str | None
    uid: int | None
    login: str | None
    url: str | None
    elapsed: float | None
    query_count: int | None
    query_time: float | None
    activity: Activity | None
    sql: list[SqlSession]


class Server(TypedDict):
    mode: Mode
    pid: int
    odoo_version: str | None


class Host(TypedDict):
    cpu_count: int
    memory_total: int
    memory_available: int
    load_average: list[float]
    boot_time: float


class CronRunner(TypedDict):
    pid: int
    tid: int | None  # threaded: the cron thread
    name: str | None
    activity: Activity | None


class OverdueCron(TypedDict):
    id: int
    name: str
    db: str
    due_at: float
    overdue: float


class CronSection(TypedDict):
    max_cron_threads: int
    runners: list[CronRunner]
    overdue: list[OverdueCron] | None  # only with cron off


class BoardStatus(TypedDict):
    available: bool
    reason: str | None  # why activity is not shown


class Scope(TypedDict):
    db: str | None  # activity and SQL of this database only; None: server-wide


class Snapshot(TypedDict):
    server: Server
    served_by: int
    taken_at: float
    config: dict
    host: Host
    processes: list[Process]
    threads: list[Thread]
    sql_unattributed: list[SqlSession]
    utilization: float | None
    http_busy: int
    http_capacity: int
    utilization_basis: UtilizationBasis
    longest_busy: float | None
    cron: CronSection
    activity_board: BoardStatus
    sql_unavailable: str | None  # why PostgreSQL could not be read (no SQL then)
    scope: Scope


class AdviceItem(TypedDict):
    """One check of ``advice.advise`` (README, "Advice")."""

    id: str  # advice.CHECK_IDS
    level: str  # advice.LEVELS
    title: str
    detail: str  # with the numbers the rule used
    fix: str  # a config line, or advice.NOTHING_TO_DO


class ExitSummary(TypedDict):
    count: int
    mostly: str  # the most frequent reason (history.REASONS)
    reasons: dict[str, int]  # reason -> exits


class ServedSnapshot(Snapshot):
    """The snapshot as the addon serves it: the engine's, with the advice and the recent exits."""

    advice: list[AdviceItem]
    exits_last_hour: dict[str, ExitSummary]  # role -> exits of its processes in the last hour


class CronRunner(TypedDict):
    pid: int
    tid: int | None  # the thread under the threaded server
    kind: ActivityKind
    since: float
    manual: bool  # "Run Manually" in a request, not a cron runner


class CronWarning(TypedDict):
    code: str  # crons.WARN_*
    message: str


class CronRow(TypedDict):
    """One scheduled action of ``GET /worker_inspector/api/crons`` (README, "Scheduled actions")."""

    id: int
    name: str
    db: str
    active: bool
    interval: dict  # {"number", "type"}
    next_call: float | None
    last_run: float | None
    last_duration: float | None
    running: list[CronRunner]
    failure_count: int | None  # 18.0+
    overdue: float | None
    warnings: list[CronWarning]


# --- The request log's views in the history answer (``requestlog``) -----------


class JobRef(TypedDict):
    id: int
    name: str | None


class RequestRecord(TypedDict):
    """One HTTP request or scheduled action run, recorded where it ended."""

    pid: int
    kind: ActivityKind  # http | cron
    started_at: float  # epoch
    duration: float  # seconds, wall
    cpu_time: float  # seconds of CPU of the serving thread
    sql_count: int
    sql_time: float  # seconds
    db: str | None
    uid: int | None
    login: str | None
    url: str | None  # path only; None for a job
    rpc: str | None  # "model.method"
    cron_job: JobRef | None
    status: int | None  # HTTP status; None for a job


class RouteRow(TypedDict):
    key: str  # URL path, "model.method" or "cron:<name>"
    count: int
    total: float
    p50: float
    p95: float
    p99: float
    max: float
    cpu_time: float
    sql_time: float


class LoadProfile(TypedDict):
    cpu_share: float
    sql_share: float
    other_share: float
    verdict: str  # cpu_bound | io_bound | mixed | idle
    explanation: str
