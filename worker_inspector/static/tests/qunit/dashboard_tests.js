/** @odoo-module **/
// The dashboard's helpers on Odoo 17.0, whose web client has QUnit and no
// HOOT (static/tests/dashboard.test.js runs on 18.0 and later).
import {localization} from "@web/core/l10n/localization";

import {formatBytes, formatSeconds} from "@worker_inspector/format";
import {
    exitRows,
    loadSeries,
    memorySeries,
} from "@worker_inspector/history_panel/history_model";
import {
    exitStack,
    requestStack,
    stackText,
} from "@worker_inspector/stack_dialog/stack_text";
import {adviceStatus, commandStatus} from "@worker_inspector/nodes_view/nodes_view";
import {memoryGauge, restartsOf, scoreboardCells} from "@worker_inspector/view_model";

const GiB = 1024 * 1024 * 1024;

// Only modules every series has: 18.0+ also load this file in their legacy
// QUnit bundle.
const ENGLISH = {decimalPoint: ".", thousandsSep: ",", grouping: [3, 0]};
let saved = null;

QUnit.module("worker_inspector", {
    beforeEach() {
        saved = Object.fromEntries(
            Object.keys(ENGLISH).map((k) => [k, localization[k]])
        );
        Object.assign(localization, ENGLISH);
    },
    afterEach() {
        Object.assign(localization, saved);
    },
});

QUnit.test("worker_inspector: formats bytes and durations", (assert) => {
    assert.strictEqual(formatBytes(3 * GiB), "3.00 GiB");
    assert.strictEqual(formatBytes(undefined), "");
    assert.strictEqual(formatSeconds(0.02), "20 ms");
    assert.strictEqual(formatSeconds(65), "1 min 05 s");
});

QUnit.test("worker_inspector: memory gauge against the limits", (assert) => {
    assert.strictEqual(memoryGauge(1 * GiB, 2 * GiB, 4 * GiB).level, "ok");
    assert.strictEqual(memoryGauge(3 * GiB, 2 * GiB, 4 * GiB).level, "soft");
    assert.strictEqual(memoryGauge(5 * GiB, 2 * GiB, 4 * GiB).percent, 100);
});

QUnit.test("worker_inspector: scoreboard of a prefork server", (assert) => {
    const now = 1_800_000_000;
    const idle = {state: "idle", kind: "http", since: now - 1, elapsed: 1};
    const snapshot = {
        server: {mode: "prefork", pid: 10},
        served_by: 11,
        taken_at: now,
        processes: [
            {pid: 10, role: "master", activity: null, sql: []},
            // worker, recyclable: the engine's rules, sent by the API.
            {
                pid: 11,
                role: "http",
                worker: true,
                recyclable: true,
                activity: idle,
                sql: [],
            },
            {pid: 12, role: "gevent", activity: null, sql: []},
        ],
        threads: [],
    };
    assert.deepEqual(
        scoreboardCells(snapshot).map((cell) => [cell.pid, cell.state]),
        [[11, "idle"]]
    );
});

QUnit.test("worker_inspector: history exits, memory and load series", (assert) => {
    const history = {
        exits: [
            {pid: 11, role: "http", reason: "memory_soft", ended_at: 100, doing: null},
            {
                pid: 12,
                role: "cron",
                reason: "time_real",
                ended_at: 200,
                doing: {url: null, cron_job: {id: 1, name: "Mail"}, elapsed: 9},
            },
        ],
        series: {
            interval: 10,
            points: [
                {
                    t: 1000,
                    utilization: 0.25,
                    backlog: 2,
                    processes: [
                        {pid: 1, role: "master", vms: 1},
                        {pid: 11, role: "http", vms: GiB},
                    ],
                },
            ],
        },
    };
    assert.deepEqual(
        exitRows(history).map((e) => [e.pid, e.badge, e.doingText]),
        [
            [12, "danger", "Mail"],
            [11, "warning", ""],
        ]
    );
    assert.deepEqual(
        exitRows(history, "memory_soft").map((e) => e.pid),
        [11]
    );
    assert.deepEqual(
        memorySeries(history, {limit_memory_soft: 0, limit_memory_hard: 2 * GiB}).map(
            (d) => d.label
        ),
        ["http 11", "Hard limit"]
    );
    const [utilization, backlog] = loadSeries(history);
    assert.deepEqual(utilization.data, [{x: 1000000, y: 25}]);
    assert.deepEqual(backlog.data, [{x: 1000000, y: 2}]);
    assert.strictEqual(
        restartsOf(
            {exits_last_hour: {http: {count: 4, mostly: "limit_request"}}},
            "http"
        ),
        "restarts in the last hour: 4, mostly limit_request"
    );
    assert.strictEqual(restartsOf({exits_last_hour: {}}, "http"), "");
});

QUnit.test("worker_inspector: stacks kept with exits and request records", (assert) => {
    const frames = [
        {
            file: "my/main.py",
            line: 3,
            function: "slow",
            code: "sleep(9)",
            origin: "addon",
        },
    ];
    const exit = {
        pid: 12,
        role: "http",
        reason: "time_real",
        ended_at: 200,
        doing: {url: "/web/slow", cron_job: null, elapsed: 12, stack: frames},
    };
    assert.strictEqual(exitRows({exits: [exit]})[0].stack.threads[0].frames, frames);
    assert.strictEqual(exitStack({...exit, doing: null}), null);
    const record = {
        pid: 7,
        kind: "http",
        started_at: 1_700_000_000,
        duration: 11.5,
        url: "/web/slow",
        cron_job: null,
        db: "db1",
        login: "admin",
        stack: frames,
    };
    assert.strictEqual(requestStack({...record, stack: null}), null);
    assert.ok(
        stackText(requestStack(record)).includes('File "my/main.py", line 3, in slow')
    );
});

QUnit.test("worker_inspector: a node's advice badge and expired command", (assert) => {
    const levels = {
        worst: "warning",
        counts: {ok: 7, info: 1, warning: 1, critical: 0},
        alerts: ["workers_vs_cpus"],
    };
    const badge = adviceStatus({summary: {advice_levels: levels}});
    assert.deepEqual(
        [badge.level, badge.label, badge.className, badge.title],
        ["warning", "1 warning, 1 info", "text-bg-warning", "workers_vs_cpus"]
    );
    assert.strictEqual(adviceStatus({summary: {}}), null);
    const last = {action: "recycle", state: "expired", result: {reason: "gone"}};
    assert.deepEqual(commandStatus({pending: [], last_command: last}), {
        label: "recycle expired: gone",
        state: "expired",
    });
});
