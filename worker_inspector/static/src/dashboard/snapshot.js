/** @odoo-module **/
import {_t} from "@web/core/l10n/translation";

// Reading order of a server: its root first, then the workers that serve
// requests, then cron, then the websocket process.
const ROLE_ORDER = {master: 0, server: 0, http: 1, cron: 2, gevent: 3};
// Roles (prefork) and thread kinds (threaded) that serve requests or run jobs.
export const WORKER_ROLES = ["http", "cron"];
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
            .filter((process) => WORKER_ROLES.includes(process.role))
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
        .filter((thread) => WORKER_ROLES.includes(thread.kind))
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

/**
 * Whether the dashboard offers to recycle a process: an HTTP or cron worker
 * of a prefork server, which the master replaces when it exits.
 */
export function canRecycle(snapshot, process) {
    return snapshot.server.mode === "prefork" && WORKER_ROLES.includes(process.role);
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
