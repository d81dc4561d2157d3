/** @odoo-module **/
import {beforeEach, describe, expect, test} from "@odoo/hoot";
import {patchTranslations} from "@web/../tests/web_test_helpers";

import {
    describeDoing,
    exitRows,
    loadSeries,
    memorySeries,
} from "@worker_inspector/history_panel/history_model";
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
