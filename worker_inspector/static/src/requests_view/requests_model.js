/** @odoo-module **/
/**
 * What the Requests view shows, derived from the request log's views of the
 * history API (``GET /worker_inspector/api/history?kinds=requests,routes,profile``):
 * plain functions, unit-tested.
 */
import {_t} from "@web/core/l10n/translation";
import {requestStack} from "../stack_dialog/stack_text";

/** Time windows of the view (hours). */
export const REQUEST_WINDOWS = [
    {hours: 0.25, label: _t("Last 15 minutes")},
    {hours: 1, label: _t("Last hour")},
    {hours: 6, label: _t("Last 6 hours")},
    {hours: 24, label: _t("Last 24 hours")},
];
export const DEFAULT_WINDOW_HOURS = 1;

/** The ``min_duration`` filter's choices, seconds (null: every request). */
export const MIN_DURATIONS = [null, 0.1, 0.5, 1, 5, 10];

/** Routes shown before "Show all"; slow requests likewise. */
export const TOP_ROUTES = 20;
export const TOP_REQUESTS = 50;

/** The verdicts of the load profile (README: Load profile), each with its badge colour. */
export function verdicts() {
    return {
        cpu_bound: {label: _t("CPU-bound"), badge: "danger"},
        io_bound: {label: _t("I/O-bound"), badge: "info"},
        mixed: {label: _t("Mixed"), badge: "warning"},
        idle: {label: _t("Idle"), badge: "secondary"},
    };
}

/** The parts of request time, in the order of the stacked bars. */
export function timeParts() {
    return [
        {part: "cpu", label: _t("CPU"), color: "bg-primary"},
        {part: "sql", label: _t("SQL"), color: "bg-warning"},
        {part: "other", label: _t("Other"), color: "bg-secondary"},
    ];
}

/** The routes table's columns; ``numeric`` ones sort largest first on the first click. */
export function routeColumns() {
    return [
        {column: "key", label: _t("Route"), numeric: false},
        {column: "count", label: _t("Count"), numeric: true},
        {column: "total", label: _t("Total"), numeric: true},
        {column: "p50", label: _t("p50"), numeric: true},
        {column: "p95", label: _t("p95"), numeric: true},
        {column: "p99", label: _t("p99"), numeric: true},
        {column: "max", label: _t("Max"), numeric: true},
        {column: "cpu_share", label: _t("CPU share"), numeric: true},
        {column: "sql_share", label: _t("SQL share"), numeric: true},
    ];
}
const COLUMNS = new Set(routeColumns().map((c) => c.column));

/** Total time first, largest first: what to optimise. */
export const DEFAULT_SORT = {column: "total", descending: true};

/** ``part`` / ``total`` in [0, 1]; 0 without a total. */
export function shareOf(part, total) {
    if (!(total > 0) || !(part > 0)) {
        return 0;
    }
    return Math.min(part / total, 1);
}

/**
 * The API's queries for the view. Without a route filter, one answer holds
 * everything; with one, the routes table and the profile stay those of the
 * whole window (the API filters every view by ``route``) and the requests
 * alone are asked for that route.
 *
 * @param {{since: number, route?: string|null, minDuration?: number|null}} filters
 * @returns {Object[]} arguments of api.fetchRequestLog
 */
export function requestQueries({since, route = null, minDuration = null}) {
    if (!route) {
        return [
            {
                since,
                kinds: ["requests", "routes", "profile"],
                min_duration: minDuration,
            },
        ];
    }
    return [
        {since, kinds: ["routes", "profile"]},
        {since, kinds: ["requests"], route, min_duration: minDuration},
    ];
}

/** The route key the API groups a request record by (engine/requestlog.py route_key). */
export function routeKey(record) {
    if (record.rpc) {
        return record.rpc;
    }
    if (record.kind === "cron") {
        return `cron:${record.cron_job?.name}`;
    }
    return record.url || "/";
}

/** Route rows with their CPU and SQL shares of the route's total time. */
export function routeRows(routes) {
    return (routes || []).map((route) => ({
        ...route,
        cpu_share: shareOf(route.cpu_time, route.total),
        sql_share: shareOf(route.sql_time, route.total),
    }));
}

/** ``rows`` sorted by ``sort.column`` (ties by key), a new array. */
export function sortRoutes(rows, sort = DEFAULT_SORT) {
    const column = COLUMNS.has(sort.column) ? sort.column : DEFAULT_SORT.column;
    const direction = sort.descending ? -1 : 1;
    const byKey = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    return [...rows].sort((a, b) => {
        let order;
        if (column === "key") {
            order = byKey(a, b);
        } else {
            order = (a[column] || 0) - (b[column] || 0);
        }
        return order * direction || byKey(a, b);
    });
}

/** The sort after a click on ``column``'s header: the same column flips, another starts. */
export function nextSort(sort, column) {
    if (sort.column === column) {
        return {column, descending: !sort.descending};
    }
    const numeric = routeColumns().find((c) => c.column === column)?.numeric ?? true;
    return {column, descending: numeric};
}

/**
 * A record's wall time split as the load profile splits it: CPU of the thread
 * that served it, SQL, and the rest (locks, I/O, network, the GIL), in seconds
 * and as shares of its duration.
 */
export function requestSplit(record) {
    const duration = Math.max(record.duration || 0, 0);
    const cpu = Math.min(Math.max(record.cpu_time || 0, 0), duration);
    const sql = Math.min(Math.max(record.sql_time || 0, 0), duration - cpu);
    const other = Math.max(duration - cpu - sql, 0);
    return {
        cpu,
        sql,
        other,
        cpu_share: shareOf(cpu, duration),
        sql_share: shareOf(sql, duration),
        other_share: shareOf(other, duration),
    };
}

/** Stacked-bar segments of ``shares`` (``cpu_share``, ``sql_share``, ``other_share``). */
export function shareSegments(shares) {
    return timeParts().map(({part, label, color}) => {
        const share = Math.max(shares?.[`${part}_share`] || 0, 0);
        return {part, label, color, share, percent: Math.round(share * 1000) / 10};
    });
}

/** The load profile for the view: its verdict's label and badge, the bar's segments. */
export function profileView(profile) {
    if (!profile) {
        return null;
    }
    const known = verdicts();
    const verdict = known[profile.verdict] || known.idle;
    return {
        verdict: profile.verdict,
        label: verdict.label,
        badge: verdict.badge,
        explanation: profile.explanation || "",
        segments: shareSegments(profile),
        idle: profile.verdict === "idle",
    };
}

/**
 * Cores busy with request CPU on average over ``seconds``: the routes' CPU
 * time over the window (null without a window).
 */
export function busyCores(routes, seconds) {
    if (!(seconds > 0)) {
        return null;
    }
    const cpu = (routes || []).reduce((sum, route) => sum + (route.cpu_time || 0), 0);
    return cpu / seconds;
}

/** What a request was: the RPC called, the cron job's name, or its URL. */
export function requestTarget(record) {
    if (record.kind === "cron") {
        return record.cron_job?.name || "";
    }
    return record.rpc || record.url || "";
}

/** Bootstrap colour of an HTTP status: 5xx danger, 4xx warning, else none. */
export function statusBadge(status) {
    if (status >= 500) {
        return "danger";
    }
    if (status >= 400) {
        return "warning";
    }
    return "light";
}

/** The slow requests, slowest first, with their split, route key and kept stack. */
export function requestRows(requests) {
    return (requests || [])
        .map((record, index) => {
            const split = requestSplit(record);
            return {
                ...record,
                id: `${record.pid}-${record.started_at}-${index}`,
                routeKey: routeKey(record),
                target: requestTarget(record),
                split,
                segments: shareSegments(split),
                badge: statusBadge(record.status),
                stackAnswer: requestStack(record),
            };
        })
        .sort((a, b) => b.duration - a.duration);
}
