/** @odoo-module **/
import {beforeEach, describe, expect, test} from "@odoo/hoot";
import {patchTranslations, patchWithCleanup} from "@web/../tests/web_test_helpers";
import {localization} from "@web/core/l10n/localization";

import {formatBytes, formatPercent, formatSeconds} from "@worker_inspector/format";
import {
    countByRole,
    degradedReasons,
    describeActivity,
    memoryGauge,
    processRows,
    scoreboardCells,
    scoreboardOf,
    sortProcesses,
    sortThreads,
    workingSessions,
} from "@worker_inspector/view_model";

describe.current.tags("headless");

beforeEach(() => {
    // An English user: untranslated terms, "." decimal point.
    patchTranslations();
    patchWithCleanup(localization, {
        decimalPoint: ".",
        thousandsSep: ",",
        grouping: [3, 0],
        dateFormat: "MM/dd/yyyy",
        timeFormat: "HH:mm:ss",
        dateTimeFormat: "MM/dd/yyyy HH:mm:ss",
    });
});

const MiB = 1024 * 1024;
const NOW = 1_700_000_000;

function activity(state, since, extra = {}) {
    return {
        state,
        kind: "http",
        since,
        elapsed: NOW - since,
        db: "db1",
        uid: 2,
        login: "admin",
        url: "/odoo",
        requests: 3,
        cron_job: null,
        ...extra,
    };
}

// Shaped like GET /worker_inspector/api/snapshot of a prefork server.
function preforkSnapshot() {
    return {
        server: {mode: "prefork", pid: 100, odoo_version: "18.0"},
        served_by: 102,
        taken_at: NOW,
        processes: [
            {pid: 100, role: "master", activity: null, sql: []},
            {pid: 105, role: "gevent", activity: null, sql: []},
            {
                pid: 104,
                role: "cron",
                recyclable: true,
                worker: true,
                activity: activity("busy", NOW - 30, {kind: "cron"}),
                sql: [],
            },
            {
                pid: 103,
                role: "http",
                recyclable: true,
                worker: true,
                activity: activity("idle", NOW - 5),
                sql: [],
            },
            {
                pid: 101,
                role: "http",
                recyclable: true,
                worker: true,
                activity: activity("busy", NOW - 12),
                sql: [
                    {
                        state: "active",
                        wait_event: "PgSleep",
                        duration: 11.5,
                        query: "SELECT 1",
                    },
                ],
            },
            // Not recyclable, as the API might say of a worker it cannot signal:
            // the dashboard follows the API, it has no rule of its own.
            {
                pid: 102,
                role: "http",
                worker: true,
                activity: activity("busy", NOW - 0.01),
                sql: [],
            },
        ],
        threads: [],
    };
}

test("formatBytes uses binary units and three significant digits", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(350 * MiB)).toBe("350 MiB");
    expect(formatBytes(2048 * MiB)).toBe("2.00 GiB");
    expect(formatBytes(25.5 * 1024 * MiB)).toBe("25.5 GiB");
    expect(formatBytes(null)).toBe("");
});

test("formatSeconds is precise when short", () => {
    expect(formatSeconds(0.35)).toBe("350 ms");
    expect(formatSeconds(4.25)).toBe("4.3 s");
    expect(formatSeconds(42)).toBe("42 s");
    expect(formatSeconds(185)).toBe("3 min 05 s");
    expect(formatSeconds(7620)).toBe("2 h 07 min");
    expect(formatSeconds(3 * 86400 + 4 * 3600 + 59)).toBe("3 d 4 h");
    expect(formatSeconds(-1)).toBe("0 ms");
    expect(formatSeconds(undefined)).toBe("");
});

test("formatPercent", () => {
    expect(formatPercent(3.25)).toBe("3.3 %");
    expect(formatPercent(75)).toBe("75 %");
    expect(formatPercent(null)).toBe("");
});

test("memoryGauge places virtual memory against the soft and hard limits", () => {
    const soft = 2048 * MiB;
    const hard = 2560 * MiB;
    expect(memoryGauge(1000 * MiB, 0, 0)).toEqual({
        percent: 0,
        softPercent: null,
        level: "none",
        scale: 0,
    });
    const low = memoryGauge(512 * MiB, soft, hard);
    expect(low.level).toBe("ok");
    expect(low.percent).toBe(20);
    expect(low.softPercent).toBe(80);
    expect(memoryGauge(1900 * MiB, soft, hard).level).toBe("near");
    expect(memoryGauge(2100 * MiB, soft, hard).level).toBe("soft");
    const over = memoryGauge(3000 * MiB, soft, hard);
    expect(over.level).toBe("hard");
    expect(over.percent).toBe(100);
    // Only a soft limit: the bar is scaled to it, no marker.
    expect(memoryGauge(1024 * MiB, soft, 0)).toEqual({
        percent: 50,
        softPercent: null,
        level: "ok",
        scale: soft,
    });
});

test("sortProcesses puts the longest busy first, then the server's reading order", () => {
    const pids = sortProcesses(preforkSnapshot().processes).map((p) => p.pid);
    expect(pids).toEqual([104, 101, 102, 100, 103, 105]);
});

test("countByRole", () => {
    expect(countByRole(preforkSnapshot().processes)).toEqual({
        master: 1,
        server: 0,
        http: 3,
        cron: 1,
        gevent: 1,
    });
});

test("scoreboard of a prefork server: one cell per HTTP and cron worker", () => {
    const cells = scoreboardCells(preforkSnapshot());
    expect(cells.map((cell) => [cell.pid, cell.role, cell.state])).toEqual([
        [101, "http", "sql"],
        [102, "http", "busy"],
        [103, "http", "idle"],
        [104, "cron", "busy"],
    ]);
});

test("scoreboard of a threaded server: one cell per request and cron thread", () => {
    const snapshot = {
        server: {mode: "threaded", pid: 200},
        served_by: 200,
        taken_at: NOW,
        processes: [{pid: 200, role: "server", activity: null, sql: []}],
        threads: [
            {ident: 1, native_id: 11, name: "MainThread", kind: "main", activity: null},
            {
                ident: 2,
                native_id: 12,
                name: "odoo.service.cron.cron0",
                kind: "cron",
                worker: true,
                activity: null,
            },
            {
                ident: 3,
                native_id: 13,
                name: "odoo.service.http.request.3",
                kind: "http",
                worker: true,
                activity: activity("busy", NOW - 2),
                sql: [{state: "active", duration: 1.5, query: "SELECT pg_sleep(5)"}],
            },
            {
                ident: 4,
                native_id: 14,
                name: "odoo.service.httpd",
                kind: "httpd",
                activity: null,
            },
            {
                ident: 5,
                native_id: 15,
                name: "odoo.service.http.request.5",
                kind: "websocket",
            },
        ],
    };
    const cells = scoreboardCells(snapshot);
    expect(cells.map((cell) => [cell.tid, cell.role, cell.label, cell.state])).toEqual([
        [13, "http", "13", "sql"],
        [12, "cron", "cron0", "idle"],
    ]);
});

test("workingSessions leaves out idle pooled connections", () => {
    const sessions = [
        {state: "idle", query: "ROLLBACK"},
        {state: "active", query: "SELECT 1"},
        {state: "idle in transaction", query: "SELECT 2"},
    ];
    expect(workingSessions(sessions).map((s) => s.query)).toEqual([
        "SELECT 1",
        "SELECT 2",
    ]);
    expect(workingSessions(undefined)).toEqual([]);
});

test("sortThreads: threads doing something first, longest first", () => {
    const threads = [
        {name: "MainThread", kind: "main", elapsed: null, db: "db1", url: null},
        {name: "r1", kind: "http", elapsed: 0.5, db: "db1", url: "/a"},
        {name: "cron0", kind: "cron", elapsed: 40, db: "db1", url: null},
        {name: "r2", kind: "http", elapsed: 3, db: "db1", url: "/b"},
    ];
    expect(sortThreads(threads).map((t) => t.name)).toEqual([
        "r2",
        "r1",
        "cron0",
        "MainThread",
    ]);
});

test("degradedReasons says why activity or SQL is missing", () => {
    expect(degradedReasons(preforkSnapshot())).toEqual([]);
    const snapshot = {
        ...preforkSnapshot(),
        activity_board: {available: false, reason: "Activity is not shown: not used"},
        sql_unavailable: "PostgreSQL could not be read: server closed the connection",
    };
    expect(degradedReasons(snapshot)).toEqual([
        "Activity is not shown: not used",
        "PostgreSQL could not be read: server closed the connection",
    ]);
    expect(
        degradedReasons({...snapshot, activity_board: {available: true, reason: null}})
    ).toEqual(["PostgreSQL could not be read: server closed the connection"]);
});

test("describeActivity says what a worker does, for whom, for how long", () => {
    const busy = describeActivity(activity("busy", NOW - 12));
    expect(busy).toEqual({
        busy: true,
        cron: false,
        stateLabel: "busy",
        stateClass: "text-bg-warning",
        elapsed: "12 s",
        what: "/odoo",
        who: "admin · db1",
        requests: 3,
    });
    const job = describeActivity(
        activity("busy", NOW - 3, {
            kind: "cron",
            login: null,
            cron_job: {id: 7, name: "Mail queue", db: "db1"},
        })
    );
    expect(job.what).toBe("Scheduled action “Mail queue” (#7)");
    expect(job.who).toBe("uid 2 · db1");
    expect(job.cron).toBe(true);
    expect(describeActivity(null)).toBe(null);
});

test("processRows: one row per process, the serving one and the recyclable ones marked", () => {
    const snapshot = preforkSnapshot();
    for (const process of snapshot.processes) {
        process.started_at = NOW - 60;
    }
    const rows = processRows(snapshot);
    expect(rows.map((row) => row.process.pid)).toEqual([104, 101, 102, 100, 103, 105]);
    expect(rows.filter((row) => row.servedBy).map((row) => row.process.pid)).toEqual([
        102,
    ]);
    expect(rows.filter((row) => row.recyclable).map((row) => row.process.pid)).toEqual([
        104, 101, 103,
    ]);
    const busyInSql = rows.find((row) => row.process.pid === 101);
    expect(busyInSql.sessions).toHaveLength(1);
    expect(busyInSql.roleLabel).toBe("HTTP worker");
    expect(busyInSql.uptime).toBe("1 min 00 s");
    expect(busyInSql.startedAt).toMatch(/^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d$/);
});

test("scoreboardOf counts the cells by state", () => {
    const board = scoreboardOf({
        ...preforkSnapshot(),
        utilization: 0.75,
        http_busy: 2,
        http_capacity: 3,
        utilization_basis: "http_workers",
        longest_busy: 30,
    });
    expect(board.counts).toEqual({idle: 1, busy: 2, sql: 1});
    expect(board.cells[0].title).toBe(
        "HTTP worker 101: busy for 12 s, running SQL\n/odoo\nadmin · db1"
    );
    expect(board.utilization).toBe(0.75);
});
