/** @odoo-module **/
/**
 * Pure view-model helpers: API snapshot in, what the components show out.
 * No component state, no network; tested in HOOT (static/tests).
 */
import {_t} from "@web/core/l10n/translation";
import {formatDateTime} from "@web/core/l10n/dates";
import {formatBytes, formatSeconds} from "./format";

const {DateTime} = luxon;

// Reading order of a server: its root first, then the workers that serve
// requests, then cron, then the websocket process.
const ROLE_ORDER = {master: 0, server: 0, http: 1, cron: 2, gevent: 3};
const THREAD_KIND_ORDER = {
    http: 0,
    cron: 1,
    websocket: 2,
    httpd: 3,
    worker: 4,
    main: 5,
    other: 6,
};

export function roleLabels() {
    return {
        master: _t("Master"),
        server: _t("Server"),
        http: _t("HTTP worker"),
        cron: _t("Cron worker"),
        gevent: _t("Gevent (websocket)"),
    };
}

export function threadKindLabels() {
    return {
        http: _t("HTTP request"),
        cron: _t("Cron"),
        httpd: _t("HTTP server"),
        websocket: _t("Websocket"),
        worker: _t("Worker"),
        main: _t("Main"),
        other: _t("Other"),
    };
}

export function isBusy(activity) {
    return activity?.state === "busy";
}

/**
 * Busy processes first, the longest busy on top; then the others in reading
 * order of the server (root, HTTP, cron, gevent).
 */
export function sortProcesses(processes) {
    return [...processes].sort(
        (a, b) =>
            isBusy(b.activity) - isBusy(a.activity) ||
            (isBusy(a.activity) ? a.activity.since - b.activity.since : 0) ||
            (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) ||
            a.pid - b.pid
    );
}

/**
 * The PostgreSQL sessions worth showing: those doing something (a query
 * running, or a transaction left open), longest first. Idle pooled
 * connections are only counted.
 */
export function workingSessions(sql) {
    return (sql || []).filter((session) => session.state && session.state !== "idle");
}

export function inSql(sql) {
    return (sql || []).some((session) => session.state === "active");
}

/**
 * The scoreboard's cells: one per worker. In prefork mode the HTTP and cron
 * worker processes; in threaded mode the request and cron threads of the
 * server. "In SQL": busy with a query of its own running in PostgreSQL.
 *
 * @returns {{key: string, pid: number, tid: number|null, role: string,
 *            label: string, state: "idle"|"busy"|"sql", activity: Object|null}[]}
 */
export function scoreboardCells(snapshot) {
    const cellState = (activity, sql) =>
        isBusy(activity) ? (inSql(sql) ? "sql" : "busy") : "idle";
    if (snapshot.server.mode === "prefork") {
        return snapshot.processes
            .filter((process) => process.worker)
            .sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.pid - b.pid)
            .map((process) => ({
                key: `p${process.pid}`,
                pid: process.pid,
                tid: null,
                role: process.role,
                label: String(process.pid),
                state: cellState(process.activity, process.sql),
                activity: process.activity || null,
            }));
    }
    return snapshot.threads
        .filter((thread) => thread.worker)
        .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "http" ? -1 : 1))
        .map((thread) => ({
            key: `t${thread.ident}`,
            pid: snapshot.served_by,
            tid: thread.native_id ?? null,
            role: thread.kind,
            // "odoo.service.cron.cron0" -> "cron0"; request threads by native id
            label:
                thread.kind === "cron"
                    ? thread.name.replace(/^.*\./, "")
                    : String(thread.native_id ?? thread.ident),
            state: cellState(thread.activity, thread.sql),
            activity: thread.activity || null,
        }));
}

/**
 * Threads doing something first (longest running first), then by kind.
 */
export function sortThreads(threads) {
    const busy = (thread) =>
        Boolean(thread.url || thread.db) && thread.elapsed !== null;
    return [...threads].sort(
        (a, b) =>
            busy(b) - busy(a) ||
            (THREAD_KIND_ORDER[a.kind] ?? 9) - (THREAD_KIND_ORDER[b.kind] ?? 9) ||
            (b.elapsed ?? -1) - (a.elapsed ?? -1) ||
            a.name.localeCompare(b.name)
    );
}

export function countByRole(processes) {
    const counts = {master: 0, server: 0, http: 0, cron: 0, gevent: 0};
    for (const process of processes) {
        counts[process.role] = (counts[process.role] || 0) + 1;
    }
    return counts;
}

/**
 * Where a process's virtual memory (what Odoo checks) stands against the
 * limits Odoo enforces on it: above the soft limit the worker is recycled
 * after its request, at the hard limit allocations fail.
 *
 * @param {number} vms
 * @param {number} soft 0 = no limit
 * @param {number} hard 0 = no limit
 * @returns {{percent: number, softPercent: number|null, level: string, scale: number}}
 *   ``scale`` is the size of the full bar (0 when there is no limit at all).
 */
export function memoryGauge(vms, soft, hard) {
    const scale = Math.max(hard || 0, soft || 0);
    if (!scale) {
        return {percent: 0, softPercent: null, level: "none", scale: 0};
    }
    let level = "ok";
    if (hard && vms >= hard) {
        level = "hard";
    } else if (soft && vms >= soft) {
        level = "soft";
    } else if (soft && vms >= 0.8 * soft) {
        level = "near";
    }
    return {
        percent: Math.min(100, (100 * vms) / scale),
        softPercent: soft && hard && soft < hard ? (100 * soft) / scale : null,
        level,
        scale,
    };
}

export const GAUGE_BAR_CLASS = {
    ok: "bg-success",
    near: "bg-warning",
    soft: "bg-danger",
    hard: "bg-danger",
    none: "bg-secondary",
};

/**
 * Why part of a snapshot is missing: the activity board cannot be used (its
 * directory is not private, the filesystem is full...) or PostgreSQL could
 * not be read. The server says why; an older one says nothing.
 */
export function degradedReasons(snapshot) {
    const board = snapshot.activity_board;
    return [board && !board.available && board.reason, snapshot.sql_unavailable].filter(
        Boolean
    );
}

export const CELL_STATE_CLASS = {
    idle: "text-bg-success",
    busy: "text-bg-warning",
    sql: "text-bg-danger",
};

export const ROLE_BADGE_CLASS = {
    master: "text-bg-dark",
    server: "text-bg-dark",
    http: "text-bg-primary",
    cron: "text-bg-warning",
    gevent: "text-bg-info",
};

export function isPrefork(snapshot) {
    return snapshot.server.mode === "prefork";
}

/**
 * Whether the API reports what workers are doing (older servers do not).
 */
export function hasActivity(snapshot) {
    return snapshot.processes.some((process) => "activity" in process);
}

export function formatTimestamp(seconds) {
    return seconds ? formatDateTime(DateTime.fromSeconds(seconds)) : "";
}

/**
 * What a worker is doing, for humans: busy on a URL or a scheduled action
 * (and for how long), or idle since its last one.
 */
export function describeActivity(activity) {
    if (!activity) {
        return null;
    }
    const busy = isBusy(activity);
    const job = activity.cron_job;
    let what = "";
    if (job) {
        what = _t("Scheduled action “%(name)s” (#%(id)s)", {
            name: job.name,
            id: job.id,
        });
    } else if (activity.url) {
        what = activity.url;
    }
    const user = activity.login || (activity.uid ? _t("uid %s", activity.uid) : "");
    const who = [user, activity.db].filter(Boolean).join(" · ");
    return {
        busy,
        // A cron worker or thread counts no requests.
        cron: activity.kind === "cron",
        stateLabel: busy ? _t("busy") : _t("idle"),
        stateClass: busy ? "text-bg-warning" : "text-bg-success",
        elapsed: formatSeconds(activity.elapsed),
        what,
        who,
        requests: activity.requests,
    };
}

export function summaryOf(snapshot) {
    const {config, host, processes, threads} = snapshot;
    const totalRss = processes.reduce((sum, p) => sum + (p.rss || 0), 0);
    return {
        prefork: isPrefork(snapshot),
        serverPid: snapshot.server.pid,
        odooVersion: snapshot.server.odoo_version,
        geventPort: config.gevent_port,
        roles: countByRole(processes),
        httpRequestThreads: threads.filter((t) => t.kind === "http").length,
        cronThreads: threads.filter((t) => t.kind === "cron").length,
        maxCronThreads: config.max_cron_threads ?? 0,
        workers: config.workers ?? 0,
        totalRss,
        totalVms: processes.reduce((sum, p) => sum + (p.vms || 0), 0),
        memoryTotal: host.memory_total,
        memoryAvailable: host.memory_available,
        rssPercent: host.memory_total
            ? Math.min(100, (100 * totalRss) / host.memory_total)
            : 0,
        cpuCount: host.cpu_count,
    };
}

export function limitsText(soft, hard) {
    if (!soft && !hard) {
        return _t("no limit");
    }
    return [
        soft && _t("soft %s", formatBytes(soft)),
        hard && _t("hard %s", formatBytes(hard)),
    ]
        .filter(Boolean)
        .join(" · ");
}

export function gaugeTitle(vms, soft, hard) {
    if (!soft && !hard) {
        return _t("No memory limit applies to this process.");
    }
    return _t(
        "Virtual memory %(vms)s. Soft limit %(soft)s: above it the worker is recycled after its request. Hard limit %(hard)s: allocations beyond it fail.",
        {
            vms: formatBytes(vms),
            soft: soft ? formatBytes(soft) : _t("none"),
            hard: hard ? formatBytes(hard) : _t("none"),
        }
    );
}

/**
 * One row of the process table per process, busy ones first.
 */
export function processRows(snapshot) {
    const roles = roleLabels();
    return sortProcesses(snapshot.processes).map((process) => {
        const sessions = workingSessions(process.sql);
        return {
            process,
            activity: describeActivity(process.activity),
            sessions,
            idleSessions: (process.sql || []).length - sessions.length,
            servedBy: process.pid === snapshot.served_by,
            // The engine's rule (engine/vocabulary.py), sent with each process.
            recyclable: Boolean(process.recyclable),
            roleLabel: roles[process.role] || process.role,
            roleClass: ROLE_BADGE_CLASS[process.role] || "text-bg-secondary",
            uptime: formatSeconds(snapshot.taken_at - process.started_at),
            startedAt: formatTimestamp(process.started_at),
            restarts: restartsOf(snapshot, process.role),
        };
    });
}

/**
 * "restarts in the last hour: N, mostly <reason>" of the workers of ``role``,
 * from the snapshot's ``exits_last_hour`` (``{role: {count, mostly, reasons}}``);
 * "" for a role none of whose processes exited.
 */
export function restartsOf(snapshot, role) {
    const entry = snapshot?.exits_last_hour?.[role];
    if (!entry?.count) {
        return "";
    }
    return _t("restarts in the last hour: %(count)s, mostly %(reason)s", {
        count: entry.count,
        reason: entry.mostly,
    });
}

export function threadRows(snapshot) {
    const kinds = threadKindLabels();
    return sortThreads(snapshot.threads).map((thread) => {
        const activity = describeActivity(thread.activity);
        return {
            thread,
            kindLabel: kinds[thread.kind] || thread.kind,
            // The engine names users by login where it can (add_logins); uid otherwise.
            user:
                thread.activity?.login ||
                thread.login ||
                thread.uid ||
                thread.activity?.uid ||
                "",
            activity,
            what: (activity?.busy && activity.what) || thread.url || "",
            sessions: workingSessions(thread.sql),
        };
    });
}

/**
 * Sessions PostgreSQL names after the prefork master that no running request
 * or job claimed (workers inherit the master's connection name). Null unless
 * some are doing something: idle pooled ones are noise.
 */
export function unattributedSessions(snapshot) {
    const sessions = snapshot.sql_unattributed || [];
    const working = workingSessions(sessions);
    if (!working.length) {
        return null;
    }
    return {working, idleCount: sessions.length - working.length};
}

export function cellTitle(cell) {
    const who =
        cell.tid === null
            ? _t("%(role)s %(pid)s", {role: roleLabels()[cell.role], pid: cell.pid})
            : _t("%(kind)s thread %(tid)s", {
                  kind: threadKindLabels()[cell.role],
                  tid: cell.label,
              });
    if (!cell.activity) {
        return _t("%s: idle, nothing run yet", who);
    }
    const info = describeActivity(cell.activity);
    const state = {
        idle: _t("idle for %s", info.elapsed),
        busy: _t("busy for %s", info.elapsed),
        sql: _t("busy for %s, running SQL", info.elapsed),
    }[cell.state];
    return [`${who}: ${state}`, info.what, info.who].filter(Boolean).join("\n");
}

export function scoreboardOf(snapshot) {
    const cells = scoreboardCells(snapshot).map((cell) => ({
        ...cell,
        className: CELL_STATE_CLASS[cell.state],
        title: cellTitle(cell),
        elapsed: isBusy(cell.activity) ? formatSeconds(cell.activity.elapsed) : "",
    }));
    const counts = {idle: 0, busy: 0, sql: 0};
    for (const cell of cells) {
        counts[cell.state]++;
    }
    return {
        cells,
        counts,
        utilization: snapshot.utilization,
        httpBusy: snapshot.http_busy,
        httpCapacity: snapshot.http_capacity,
        basis: snapshot.utilization_basis,
        longestBusy: snapshot.longest_busy,
    };
}

export function cronOf(snapshot) {
    const cron = snapshot.cron;
    if (!cron) {
        return null;
    }
    const prefork = isPrefork(snapshot);
    return {
        maxCronThreads: cron.max_cron_threads,
        runners: (cron.runners || []).map((runner) => ({
            key: `${runner.pid}-${runner.tid ?? ""}`,
            label: prefork
                ? _t("Cron worker %s", runner.pid)
                : runner.name || _t("thread %s", runner.tid),
            activity: describeActivity(runner.activity),
            job: isBusy(runner.activity) ? runner.activity.cron_job : null,
        })),
        overdue: cron.overdue,
    };
}
