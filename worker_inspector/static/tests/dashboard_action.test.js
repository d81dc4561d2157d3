/** @odoo-module **/
import {describe, expect, test} from "@odoo/hoot";
import {advanceTime, animationFrame} from "@odoo/hoot-mock";
import {
    contains,
    defineWebModels,
    getService,
    mountWithCleanup,
    onRpc,
    patchTranslations,
    patchWithCleanup,
    preloadBundle,
} from "@web/../tests/web_test_helpers";
import {browser} from "@web/core/browser/browser";
import {WebClient} from "@web/webclient/webclient";

import {HISTORY_URL, RECYCLE_URL, SNAPSHOT_URL, STACK_URL} from "@worker_inspector/api";

describe.current.tags("headless");
// The History view draws with the Chart.js Odoo ships (loaded on demand).
preloadBundle("web.chartjs_lib");

const MiB = 1024 * 1024;
const NOW = 1_700_000_000;

// GET /worker_inspector/api/snapshot of an idle prefork server: master, two
// HTTP workers (the second answered), a cron worker, the gevent process.
function snapshot() {
    const process = (pid, role, extra = {}) => ({
        pid,
        ppid: pid === 100 ? 1 : 100,
        role,
        started_at: NOW - 600,
        cpu_percent: 1.5,
        rss: 120 * MiB,
        vms: 400 * MiB,
        num_threads: 3,
        limit_memory_soft: 2048 * MiB,
        limit_memory_hard: 2560 * MiB,
        nice: 0,
        status: "sleeping",
        cmdline: `odoo: ${role} ${pid}`,
        recyclable: ["http", "cron"].includes(role),
        worker: ["http", "cron"].includes(role),
        activity: null,
        sql: [],
        ...extra,
    });
    const idle = {
        state: "idle",
        kind: "http",
        since: NOW - 5,
        elapsed: 5,
        db: "db1",
        uid: 2,
        login: "admin",
        url: "/odoo",
        requests: 10,
        cron_job: null,
    };
    return {
        server: {mode: "prefork", pid: 100, odoo_version: "18.0"},
        served_by: 102,
        taken_at: NOW,
        config: {workers: 2, max_cron_threads: 1, gevent_port: 8072},
        host: {cpu_count: 2, memory_total: 8192 * MiB, memory_available: 4096 * MiB},
        processes: [
            process(100, "master"),
            process(101, "http", {activity: idle}),
            process(102, "http", {activity: {...idle, state: "busy", elapsed: 0.01}}),
            process(103, "cron", {activity: {...idle, kind: "cron", url: null}}),
            process(104, "gevent"),
        ],
        threads: [
            {
                ident: 1,
                native_id: 102,
                name: "MainThread",
                kind: "main",
                db: null,
                uid: null,
                url: null,
                elapsed: null,
                query_count: null,
                query_time: null,
                activity: null,
                sql: [],
            },
        ],
        sql_unattributed: [],
        utilization: 0.5,
        http_busy: 1,
        http_capacity: 2,
        utilization_basis: "http_workers",
        longest_busy: 0.01,
        cron: {max_cron_threads: 1, runners: [], overdue: null},
        exits_last_hour: {
            http: {count: 2, mostly: "memory_soft", reasons: {memory_soft: 2}},
        },
    };
}

// GET /worker_inspector/api/history: two exits, two points.
function history() {
    const doing = {url: "/web/slow", cron_job: null, elapsed: 125};
    const exit = (pid, reason, endedAt, extra = {}) => ({
        pid,
        role: "http",
        started_at: endedAt - 600,
        ended_at: endedAt,
        reason,
        detail: "",
        requests: 7,
        peak_rss: 200 * MiB,
        peak_vms: 900 * MiB,
        doing: null,
        ...extra,
    });
    const point = (t) => ({
        t,
        utilization: 0.5,
        http_busy: 1,
        http_capacity: 2,
        backlog: 0,
        requests_per_second: 1.5,
        longest_busy: 0.2,
        processes: [
            {pid: 101, role: "http", rss: 100 * MiB, vms: 400 * MiB, cpu_percent: 1},
        ],
    });
    return {
        taken_at: NOW,
        since: NOW - 3600,
        exits: [
            exit(90, "memory_soft", NOW - 900, {detail: "VMS 2.1 GiB > soft 2.0 GiB"}),
            exit(91, "time_real", NOW - 300, {doing}),
        ],
        series: {interval: 10, points: [point(NOW - 20), point(NOW - 10)]},
    };
}

function json(body, status = 200) {
    return new Response(JSON.stringify(body), {
        status,
        headers: {"Content-Type": "application/json"},
    });
}

/** Answers the snapshot route with ``answers`` in turn (the last one repeats). */
function serveSnapshots(...answers) {
    const calls = [];
    onRpc(
        SNAPSHOT_URL,
        (request) => {
            calls.push(request.method);
            const answer = answers[Math.min(calls.length, answers.length) - 1];
            return typeof answer === "function" ? answer() : answer;
        },
        {pure: true}
    );
    return calls;
}

/** The ``pid`` field of the form-encoded POST. */
async function postedPid(request) {
    expect(request.headers.get("Content-Type")).toMatch(
        /^application\/x-www-form-urlencoded/
    );
    return new URLSearchParams(await request.text()).get("pid");
}

async function openDashboard() {
    defineWebModels();
    patchTranslations();
    await mountWithCleanup(WebClient);
    await getService("action").doAction({
        type: "ir.actions.client",
        tag: "worker_inspector.dashboard",
    });
    await animationFrame();
}

const DASHBOARD = ".o_worker_inspector";
const PROCESS_ROWS = ".o_worker_inspector_processes tr.o_worker_inspector_process";

test("loading: shown until the first snapshot arrives", async () => {
    serveSnapshots(() => new Promise(() => {}));
    await openDashboard();
    expect(DASHBOARD).toHaveAttribute("data-status", "loading");
    expect(".o_worker_inspector_loading").toHaveCount(1);
    expect(PROCESS_ROWS).toHaveCount(0);
});

test("ready: every component shows the snapshot", async () => {
    serveSnapshots(() => json(snapshot()));
    await openDashboard();
    expect(DASHBOARD).toHaveAttribute("data-status", "ready");
    expect(PROCESS_ROWS).toHaveCount(5);
    expect(`${PROCESS_ROWS}.o_worker_inspector_served`).toHaveAttribute(
        "data-pid",
        "102"
    );
    expect(".o_worker_inspector_scoreboard .o_worker_inspector_cell").toHaveCount(3);
    expect('.o_worker_inspector_stat[data-stat="http"] .fs-3').toHaveText("2");
    expect(".o_worker_inspector_memory_gauge .progress-bar").toHaveCount(5);
    // Recycle on the HTTP and cron workers only.
    expect(".o_worker_inspector_recycle").toHaveCount(3);
    expect(".o_worker_inspector_threads tr.o_worker_inspector_thread").toHaveCount(1);
});

test("error: an unreachable server or a crash page says so and offers a retry", async () => {
    const calls = serveSnapshots(
        () => {
            throw new TypeError("Failed to fetch");
        },
        () =>
            new Response("<html>Bad gateway</html>", {
                status: 502,
                statusText: "Bad Gateway",
            }),
        () => json(snapshot())
    );
    await openDashboard();
    expect(DASHBOARD).toHaveAttribute("data-status", "error");
    expect(".o_worker_inspector_error").toHaveText(/could not be reached/);
    await contains(".o_worker_inspector_error button").click();
    await animationFrame();
    expect(".o_worker_inspector_error").toHaveText(/HTTP 502 Bad Gateway/);
    await contains(".o_worker_inspector_error button").click();
    await animationFrame();
    expect(DASHBOARD).toHaveAttribute("data-status", "ready");
    expect(calls).toHaveLength(3);
});

for (const [status, shown] of [
    [401, "unauthenticated"],
    [403, "forbidden"],
]) {
    test(`${status}: the data goes and polling stops`, async () => {
        const reason =
            status === 401 ? "Log in first." : "Settings administrators only.";
        const calls = serveSnapshots(
            () => json(snapshot()),
            () => json({error: {status, reason}}, status)
        );
        await openDashboard();
        expect(PROCESS_ROWS).toHaveCount(5);
        await advanceTime(5000);
        await animationFrame();
        expect(DASHBOARD).toHaveAttribute("data-status", shown);
        expect(PROCESS_ROWS).toHaveCount(0);
        expect(`${DASHBOARD} .o_worker_inspector_body`).toHaveText(new RegExp(reason));
        await advanceTime(60000);
        expect(calls).toHaveLength(2);
    });
}

test("stale: a failed refresh keeps the last snapshot with a warning", async () => {
    const later = snapshot();
    later.taken_at = NOW + 5;
    serveSnapshots(
        () => json(snapshot()),
        () => json({error: {status: 500, reason: "Database is gone."}}, 500),
        () => json(later)
    );
    await openDashboard();
    expect(".o_worker_inspector_stale").toHaveCount(0);
    await advanceTime(5000);
    await animationFrame();
    expect(DASHBOARD).toHaveAttribute("data-status", "ready");
    expect(".o_worker_inspector_stale").toHaveText(/Database is gone\./);
    expect(PROCESS_ROWS).toHaveCount(5);
    await advanceTime(5000);
    await animationFrame();
    expect(".o_worker_inspector_stale").toHaveCount(0);
});

test("recycle: confirm, POST the pid, say so, refresh", async () => {
    const calls = serveSnapshots(() => json(snapshot()));
    const posted = [];
    onRpc(
        RECYCLE_URL,
        async (request) => {
            posted.push(await postedPid(request));
            return json({pid: 101, role: "http", signal: "SIGINT", graceful: true});
        },
        {pure: true}
    );
    await openDashboard();
    await contains(
        `${PROCESS_ROWS}[data-pid="101"] .o_worker_inspector_recycle`
    ).click();
    expect(".modal").toHaveText(/Recycle HTTP worker 101\?/);
    await contains(".modal-footer .btn-primary").click();
    await animationFrame();
    expect(posted).toEqual(["101"]);
    expect(".o_notification").toHaveText(/Worker 101 is being recycled/);
    expect(calls).toHaveLength(2);
});

test("recycle refused: the API's reason is shown", async () => {
    serveSnapshots(() => json(snapshot()));
    onRpc(
        RECYCLE_URL,
        () =>
            json(
                {
                    error: {
                        status: 400,
                        reason: "pid 101 is not a worker of this server",
                    },
                },
                400
            ),
        {pure: true}
    );
    await openDashboard();
    await contains(
        `${PROCESS_ROWS}[data-pid="101"] .o_worker_inspector_recycle`
    ).click();
    await contains(".modal-footer .btn-primary").click();
    await animationFrame();
    expect(".o_notification").toHaveText(/Worker 101 was not recycled.*not a worker/s);
});

test("history: exits with their cause, filtered; the live rows say who restarted", async () => {
    serveSnapshots(() => json(snapshot()));
    const asked = [];
    onRpc(
        HISTORY_URL,
        (request) => {
            asked.push(
                new URL(request.url, browser.location.origin).searchParams.get("since")
            );
            return json(history());
        },
        {pure: true}
    );
    await openDashboard();
    expect(
        `${PROCESS_ROWS}[data-role="http"] .o_worker_inspector_restarts`
    ).toHaveCount(2);
    expect(
        `${PROCESS_ROWS}[data-role="cron"] .o_worker_inspector_restarts`
    ).toHaveCount(0);
    expect(`${PROCESS_ROWS}[data-pid="101"] .o_worker_inspector_restarts`).toHaveText(
        "restarts in the last hour: 2, mostly memory_soft"
    );

    await contains(".o_worker_inspector_view_history").click();
    await animationFrame();
    expect(PROCESS_ROWS).toHaveCount(0);
    expect(asked.length).toBe(1);
    // The last hour, in epoch seconds.
    expect(Date.now() / 1000 - Number(asked[0])).toBeWithin(3599, 3601);
    const EXITS = ".o_worker_inspector_exits tr.o_worker_inspector_exit";
    expect(EXITS).toHaveCount(2);
    // Newest first; the cause as a coloured badge, what it was doing.
    expect(`${EXITS}:first-child`).toHaveAttribute("data-reason", "time_real");
    expect(`${EXITS}:first-child .o_worker_inspector_exit_reason`).toHaveClass(
        "text-bg-danger"
    );
    expect(`${EXITS}:first-child`).toHaveText(/\/web\/slow/);
    expect("canvas").toHaveCount(2);

    await contains(".o_worker_inspector_exit_filter").select("memory_soft");
    expect(EXITS).toHaveCount(1);
    expect(`${EXITS} .o_worker_inspector_exit_reason`).toHaveClass("text-bg-warning");

    await contains(".o_worker_inspector_view_live").click();
    await animationFrame();
    expect(PROCESS_ROWS).toHaveCount(5);
});

test("history: refreshed every 30 s, paused while the browser tab is hidden", async () => {
    const snapshots = serveSnapshots(() => json(snapshot()));
    let asked = 0;
    onRpc(
        HISTORY_URL,
        () => {
            asked++;
            return json(history());
        },
        {pure: true}
    );
    await openDashboard();
    await contains(".o_worker_inspector_view_history").click();
    await animationFrame();
    expect(asked).toBe(1);
    await advanceTime(30_000);
    await animationFrame();
    expect(asked).toBe(2);

    patchWithCleanup(document, {visibilityState: "hidden"});
    document.dispatchEvent(new Event("visibilitychange"));
    await animationFrame();
    expect(".o_worker_inspector_paused").toHaveCount(1);
    await advanceTime(120_000);
    expect(asked).toBe(2);

    patchWithCleanup(document, {visibilityState: "visible"});
    document.dispatchEvent(new Event("visibilitychange"));
    await animationFrame();
    expect(asked).toBe(3);
    expect(".o_worker_inspector_paused").toHaveCount(0);
    await advanceTime(30_000);
    await animationFrame();
    expect(asked).toBe(4);
    // The Live view's polling waits meanwhile: only its first snapshot.
    expect(snapshots).toHaveLength(1);
});

// A stack frame as the API gives it.
function frame(fn, origin = "addon") {
    return {
        file: "my_addon/controllers/main.py",
        line: 12,
        function: fn,
        code: "time.sleep(1)",
        origin,
    };
}

test("history: an exit killed on a slow request opens the stack it kept", async () => {
    serveSnapshots(() => json(snapshot()));
    const asked = [];
    onRpc(STACK_URL, (request) => asked.push(request.url), {pure: true});
    const answer = history();
    answer.exits[1].doing = {
        url: "/web/slow",
        cron_job: null,
        elapsed: 125,
        stack: [frame("dispatch", "odoo"), frame("slow_route")],
    };
    answer.exits[0].doing = {url: "/web/fast", cron_job: null, elapsed: 1, stack: null};
    onRpc(HISTORY_URL, () => json(answer), {pure: true});
    await openDashboard();
    await contains(".o_worker_inspector_view_history").click();
    await animationFrame();
    const EXITS = ".o_worker_inspector_exits tr.o_worker_inspector_exit";
    // Only the exit with a kept stack offers it.
    expect(`${EXITS} .o_worker_inspector_kept_stack`).toHaveCount(1);
    expect(
        `${EXITS}[data-reason="memory_soft"] .o_worker_inspector_kept_stack`
    ).toHaveCount(0);
    await contains(
        `${EXITS}[data-reason="time_real"] .o_worker_inspector_kept_stack`
    ).click();
    expect(".modal .modal-title").toHaveText(
        "Stack of HTTP worker 91 before it ended (time_real)"
    );
    expect(".modal .o_worker_inspector_frame").toHaveCount(2);
    expect(".modal .o_worker_inspector_frame_addon").toHaveText(/slow_route/);
    expect(".modal .o_worker_inspector_stack_thread").toHaveText(/\/web\/slow/);
    // A kept stack is shown as it was: the process is not asked, nothing to profile.
    expect(".modal .o_worker_inspector_profile").toHaveCount(0);
    expect(asked).toEqual([]);
});

test("scoreboard: a busy cell asks for its process's stack, an idle one offers none", async () => {
    serveSnapshots(() => json(snapshot()));
    const asked = [];
    onRpc(
        STACK_URL,
        (request) => {
            asked.push(
                new URL(request.url, browser.location.origin).searchParams.get("pid")
            );
            return json({
                pid: 102,
                taken_at: NOW,
                threads: [
                    {
                        native_id: 102,
                        name: "MainThread",
                        activity: {state: "busy", url: "/odoo", elapsed: 0.01},
                        frames: [frame("busy_route")],
                    },
                ],
            });
        },
        {pure: true}
    );
    await openDashboard();
    const CELLS = ".o_worker_inspector_scoreboard .o_worker_inspector_cell";
    // 102 is busy; 101 and the cron worker 103 are idle.
    expect(`${CELLS} .o_worker_inspector_cell_stack`).toHaveCount(1);
    await contains(`${CELLS}[data-pid="102"] .o_worker_inspector_cell_stack`).click();
    await animationFrame();
    expect(asked).toEqual(["102"]);
    expect(".modal .modal-title").toHaveText("Stack of HTTP worker 102");
    expect(".modal .o_worker_inspector_frame").toHaveText(/busy_route/);
});
