import { _t } from "@web/core/l10n/translation";

// Reading order of a server: its root first, then the workers that serve
// requests, then cron, then the websocket process.
const ROLE_ORDER = { master: 0, server: 0, http: 1, cron: 2, gevent: 3 };
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

export function sortProcesses(processes) {
    return [...processes].sort(
        (a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) || a.pid - b.pid
    );
}

/**
 * Threads doing something first (longest running first), then by kind.
 */
export function sortThreads(threads) {
    const busy = (thread) => Boolean(thread.url || thread.db) && thread.elapsed !== null;
    return [...threads].sort(
        (a, b) =>
            busy(b) - busy(a) ||
            (THREAD_KIND_ORDER[a.kind] ?? 9) - (THREAD_KIND_ORDER[b.kind] ?? 9) ||
            (b.elapsed ?? -1) - (a.elapsed ?? -1) ||
            a.name.localeCompare(b.name)
    );
}

export function countByRole(processes) {
    const counts = { master: 0, server: 0, http: 0, cron: 0, gevent: 0 };
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
        return { percent: 0, softPercent: null, level: "none", scale: 0 };
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
