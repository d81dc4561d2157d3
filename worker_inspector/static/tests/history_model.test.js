/** @odoo-module **/
import {beforeEach, describe, expect, test} from "@odoo/hoot";
import {patchTranslations} from "@web/../tests/web_test_helpers";

import {
    describeDoing,
    exitRows,
    loadSeries,
    memorySeries,
} from "@worker_inspector/history_panel/history_model";
import {
    exitStack,
    requestStack,
    stackText,
} from "@worker_inspector/stack_dialog/stack_text";
import {restartsOf} from "@worker_inspector/view_model";

describe.current.tags("headless");

beforeEach(() => patchTranslations());

const GiB = 1024 * 1024 * 1024;

function point(t, processes, extra = {}) {
    return {
        t,
        utilization: 0.5,
        backlog: 0,
        http_busy: 1,
        http_capacity: 2,
        processes,
        ...extra,
    };
}

const HISTORY = {
    exits: [
        {pid: 11, role: "http", reason: "memory_soft", ended_at: 100, doing: null},
        {
            pid: 12,
            role: "http",
            reason: "time_real",
            ended_at: 200,
            doing: {url: "/web/slow", cron_job: null, elapsed: 130},
        },
        {
            pid: 13,
            role: "cron",
            reason: "bogus",
            ended_at: 300,
            doing: {url: null, cron_job: {id: 4, name: "Mail queue"}, elapsed: 2},
        },
    ],
    series: {
        interval: 10,
        points: [
            point(1000, [
                {pid: 1, role: "master", vms: 1},
                {pid: 11, role: "http", vms: GiB},
            ]),
            point(1010, [{pid: 11, role: "http", vms: 2 * GiB}], {
                utilization: null,
                backlog: 3,
            }),
        ],
    },
};

test("exits newest first, filtered by cause, with their badge", () => {
    expect(exitRows(HISTORY).map((e) => [e.pid, e.badge])).toEqual([
        [13, "light"],
        [12, "danger"],
        [11, "warning"],
    ]);
    expect(exitRows(HISTORY, "time_real").map((e) => e.pid)).toEqual([12]);
    expect(exitRows(HISTORY, "recycled")).toEqual([]);
    expect(exitRows(null)).toEqual([]);
});

test("what an exited worker was doing: its url or cron job", () => {
    expect(exitRows(HISTORY).map((e) => e.doingText)).toEqual([
        "Mail queue",
        "/web/slow",
        "",
    ]);
    expect(describeDoing({url: null, cron_job: null, elapsed: 1})).toBe("");
});

test("memory of the workers only, against the limits", () => {
    const datasets = memorySeries(HISTORY, {
        limit_memory_soft: 2 * GiB,
        limit_memory_hard: 0,
    });
    expect(datasets.map((d) => d.label)).toEqual(["http 11", "Soft limit"]);
    expect(datasets[0].data).toEqual([
        {x: 1000000, y: GiB},
        {x: 1010000, y: 2 * GiB},
    ]);
    expect(datasets[1].data).toEqual([
        {x: 1000000, y: 2 * GiB},
        {x: 1010000, y: 2 * GiB},
    ]);
    expect(memorySeries({series: {points: []}}, {limit_memory_soft: GiB})).toEqual([]);
});

test("utilization in percent, backlog as it is", () => {
    const [utilization, backlog] = loadSeries(HISTORY);
    expect(utilization.data).toEqual([{x: 1000000, y: 50}]);
    expect(backlog.data.map((p) => p.y)).toEqual([0, 3]);
});

test("restarts in the last hour of a role, with the main cause", () => {
    const snapshot = {
        exits_last_hour: {
            http: {
                count: 3,
                mostly: "memory_soft",
                reasons: {memory_soft: 2, crashed: 1},
            },
        },
    };
    expect(restartsOf(snapshot, "http")).toBe(
        "restarts in the last hour: 3, mostly memory_soft"
    );
    expect(restartsOf(snapshot, "cron")).toBe("");
    expect(restartsOf({}, "http")).toBe("");
});

test("kept stacks: of an exit and of a request record, as a one-thread stack answer", () => {
    const frames = [
        {
            file: "odoo/http.py",
            line: 10,
            function: "dispatch",
            code: "",
            origin: "odoo",
        },
        {
            file: "my/main.py",
            line: 3,
            function: "slow",
            code: "sleep(9)",
            origin: "addon",
        },
    ];
    const doing = {url: "/web/slow", cron_job: null, elapsed: 12, stack: frames};
    const exit = {pid: 12, role: "http", reason: "time_real", ended_at: 200, doing};
    const [row] = exitRows({exits: [exit]});
    expect(row.stack.threads).toHaveLength(1);
    expect(row.stack.threads[0].frames).toBe(frames);
    expect(row.stack.pid).toBe(12);
    expect(
        exitRows({exits: [{...exit, doing: {...doing, stack: null}}]})[0].stack
    ).toBe(null);
    expect(exitStack({...exit, doing: null})).toBe(null);

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
    const answer = requestStack(record);
    expect(answer.threads[0].activity.url).toBe("/web/slow");
    expect(requestStack({...record, stack: null})).toBe(null);
    const text = stackText(answer);
    expect(text).toMatch(/^Process 7, 2023-11-14T22:13:20\.000Z\n/);
    expect(text).toMatch(/busy, \/web\/slow, db db1, user admin, 11\.5 s/);
    expect(text).toMatch(/File "my\/main.py", line 3, in slow\n {4}sleep\(9\)/);
});
