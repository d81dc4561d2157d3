/** @odoo-module **/
/**
 * What the History view shows, derived from the history API's answer
 * (``GET /worker_inspector/api/history``): plain functions, unit-tested.
 */
import {_t} from "@web/core/l10n/translation";
import {exitStack} from "../stack_dialog/stack_text";

/** Exit causes, with the badge colour of each (Bootstrap text-bg-*). */
export const EXIT_REASONS = [
    {reason: "memory_soft", badge: "warning", label: _t("Memory (soft limit)")},
    {reason: "memory_hard", badge: "danger", label: _t("Memory (hard limit)")},
    {reason: "limit_request", badge: "info", label: _t("Request limit")},
    {reason: "time_cpu", badge: "danger", label: _t("CPU time limit")},
    {reason: "time_real", badge: "danger", label: _t("Real time limit")},
    {reason: "recycled", badge: "primary", label: _t("Recycled")},
    {reason: "reload", badge: "secondary", label: _t("Reload")},
    {reason: "crashed", badge: "dark", label: _t("Crashed")},
    {reason: "unknown", badge: "light", label: _t("Unknown")},
];
const BY_REASON = Object.fromEntries(
    EXIT_REASONS.map((entry) => [entry.reason, entry])
);

/** The exits, newest first, of one cause (``reason``) or all (""), with their badge. */
export function exitRows(history, reason = "") {
    const exits = history?.exits || [];
    return exits
        .filter((exit) => !reason || exit.reason === reason)
        .map((exit) => ({
            ...exit,
            badge: (BY_REASON[exit.reason] || BY_REASON.unknown).badge,
            doingText: describeDoing(exit.doing),
            // the stack kept of the request it was on (README: Stacks), or null
            stack: exitStack(exit),
        }))
        .sort((a, b) => b.ended_at - a.ended_at);
}

/** What an exited worker was serving: its url or cron job (null: idle or hidden). */
export function describeDoing(doing) {
    if (!doing) {
        return "";
    }
    return doing.url || doing.cron_job?.name || "";
}

// One colour per worker line; the limits are yellow and red, dashed.
const WORKER_COLORS = [
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#17becf",
    "#e377c2",
];

/**
 * Chart.js datasets: virtual memory of each HTTP and cron worker over time
 * (the memory Odoo's limits check), and the soft and hard limits as dashed lines.
 */
export function memorySeries(history, config) {
    const points = history?.series?.points || [];
    const byPid = new Map();
    for (const point of points) {
        for (const proc of point.processes) {
            if (proc.role !== "http" && proc.role !== "cron") {
                continue;
            }
            if (!byPid.has(proc.pid)) {
                const color = WORKER_COLORS[byPid.size % WORKER_COLORS.length];
                byPid.set(proc.pid, {
                    label: `${proc.role} ${proc.pid}`,
                    data: [],
                    borderColor: color,
                    backgroundColor: color,
                    pointRadius: 0,
                    borderWidth: 1.5,
                });
            }
            byPid.get(proc.pid).data.push({x: point.t * 1000, y: proc.vms});
        }
    }
    const datasets = [...byPid.values()];
    if (points.length) {
        const span = [points[0].t * 1000, points[points.length - 1].t * 1000];
        for (const [key, label, color] of [
            ["limit_memory_soft", _t("Soft limit"), "#e0a800"],
            ["limit_memory_hard", _t("Hard limit"), "#dc3545"],
        ]) {
            if (config[key]) {
                datasets.push({
                    label,
                    data: span.map((x) => ({x, y: config[key]})),
                    borderColor: color,
                    borderDash: [6, 4],
                    pointRadius: 0,
                    borderWidth: 1,
                });
            }
        }
    }
    return datasets;
}

/** Chart.js datasets: utilization (%) and accept backlog over time, on two axes. */
export function loadSeries(history) {
    const points = history?.series?.points || [];
    return [
        {
            label: _t("Utilization (%)"),
            yAxisID: "utilization",
            data: points
                .filter((p) => p.utilization !== null)
                .map((p) => ({
                    x: p.t * 1000,
                    y: Math.round(p.utilization * 1000) / 10,
                })),
            pointRadius: 0,
            borderWidth: 1.5,
            fill: true,
        },
        {
            label: _t("Backlog (connections waiting)"),
            yAxisID: "backlog",
            data: points.map((p) => ({x: p.t * 1000, y: p.backlog})),
            pointRadius: 0,
            borderWidth: 1.5,
            stepped: true,
        },
    ];
}
