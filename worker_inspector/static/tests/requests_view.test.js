/** @odoo-module **/
import {beforeEach, describe, expect, test} from "@odoo/hoot";
import {advanceTime, animationFrame} from "@odoo/hoot-mock";
import {
    contains,
    defineWebModels,
    getService,
    mountWithCleanup,
    onRpc,
    patchTranslations,
    patchWithCleanup,
} from "@web/../tests/web_test_helpers";
import {browser} from "@web/core/browser/browser";
import {localization} from "@web/core/l10n/localization";
import {WebClient} from "@web/webclient/webclient";

import {HISTORY_URL, SNAPSHOT_URL} from "@worker_inspector/api";
import {
    DEFAULT_SORT,
    busyCores,
    nextSort,
    profileView,
    requestQueries,
    requestRows,
    requestSplit,
    routeKey,
    routeRows,
    shareSegments,
    sortRoutes,
} from "@worker_inspector/requests_view/requests_model";

describe.current.tags("headless");

beforeEach(() => {
    patchTranslations();
    patchWithCleanup(localization, {
        decimalPoint: ".",
        thousandsSep: ",",
        grouping: [3, 0],
    });
});

const NOW = 1_700_000_000;

// Rows of the API's ``routes`` (engine/requestlog.py routes()).
const ROUTES = [
    {
        key: "/web/dataset/call_kw",
        count: 4,
        total: 2,
        p50: 0.4,
        p95: 0.9,
        p99: 0.9,
        max: 0.9,
        cpu_time: 1.5,
        sql_time: 0.25,
    },
    {
        key: "res.partner.search_read",
        count: 10,
        total: 8,
        p50: 0.7,
        p95: 1.5,
        p99: 1.9,
        max: 2,
        cpu_time: 0.8,
        sql_time: 6,
    },
    {
        key: "cron:Mail: send queued",
        count: 1,
        total: 0.5,
        p50: 0.5,
        p95: 0.5,
        p99: 0.5,
        max: 0.5,
        cpu_time: 0,
        sql_time: 0,
    },
];

// Records of the API's ``requests``.
function record(extra = {}) {
    return {
        pid: 4242,
        kind: "http",
        started_at: NOW - 60,
        duration: 2,
        cpu_time: 0.5,
        sql_count: 12,
        sql_time: 1,
        db: "db1",
        uid: 2,
        login: "admin",
        url: "/web/dataset/call_kw/res.partner/search_read",
        rpc: "res.partner.search_read",
        cron_job: null,
        status: 200,
        ...extra,
    };
}

const CRON = record({
    kind: "cron",
    duration: 0.5,
    cpu_time: 0.1,
    sql_time: 0,
    url: null,
    rpc: null,
    cron_job: {id: 3, name: "Mail: send queued"},
    status: null,
    uid: 1,
    login: "__system__",
});

test("route rows: shares of each route's total time", () => {
    const rows = routeRows(ROUTES);
    expect(rows.map((r) => [r.key, r.cpu_share, r.sql_share])).toEqual([
        ["/web/dataset/call_kw", 0.75, 0.125],
        ["res.partner.search_read", 0.1, 0.75],
        ["cron:Mail: send queued", 0, 0],
    ]);
    expect(routeRows(null)).toEqual([]);
});

test("routes sorted by total time first, by any column on a click", () => {
    const rows = routeRows(ROUTES);
    const keys = (sorted) => sorted.map((r) => r.key);
    expect(DEFAULT_SORT).toEqual({column: "total", descending: true});
    expect(keys(sortRoutes(rows))).toEqual([
        "res.partner.search_read",
        "/web/dataset/call_kw",
        "cron:Mail: send queued",
    ]);
    let sort = nextSort(DEFAULT_SORT, "cpu_share");
    expect(sort).toEqual({column: "cpu_share", descending: true});
    expect(keys(sortRoutes(rows, sort))[0]).toBe("/web/dataset/call_kw");
    sort = nextSort(sort, "cpu_share");
    expect(sort.descending).toBe(false);
    expect(keys(sortRoutes(rows, sort))[0]).toBe("cron:Mail: send queued");
    // The key starts alphabetical.
    sort = nextSort(sort, "key");
    expect(sort).toEqual({column: "key", descending: false});
    expect(keys(sortRoutes(rows, sort))).toEqual([
        "/web/dataset/call_kw",
        "cron:Mail: send queued",
        "res.partner.search_read",
    ]);
    // Not a column: total time.
    expect(keys(sortRoutes(rows, {column: "bogus", descending: true}))[0]).toBe(
        "res.partner.search_read"
    );
});

test("a route row asks the requests of that route only", () => {
    expect(requestQueries({since: 100})).toEqual([
        {since: 100, kinds: ["requests", "routes", "profile"], min_duration: null},
    ]);
    // The routes and the profile stay those of the window.
    expect(requestQueries({since: 100, route: "/web", minDuration: 1})).toEqual([
        {since: 100, kinds: ["routes", "profile"]},
        {since: 100, kinds: ["requests"], route: "/web", min_duration: 1},
    ]);
});

test("a request's split CPU / SQL / other and its route key", () => {
    const split = requestSplit(record());
    expect([split.cpu, split.sql, split.other]).toEqual([0.5, 1, 0.5]);
    expect([split.cpu_share, split.sql_share, split.other_share]).toEqual([
        0.25, 0.5, 0.25,
    ]);
    // CPU and SQL never more than the wall time.
    const over = requestSplit(record({duration: 1, cpu_time: 0.75, sql_time: 0.5}));
    expect([over.cpu, over.sql, over.other]).toEqual([0.75, 0.25, 0]);
    expect(routeKey(record())).toBe("res.partner.search_read");
    expect(routeKey(record({rpc: null, url: "/shop"}))).toBe("/shop");
    expect(routeKey(CRON)).toBe("cron:Mail: send queued");
});

test("request rows: slowest first, what they were, the stack they kept", () => {
    const frames = [
        {file: "my/main.py", line: 3, function: "slow", code: "x()", origin: "addon"},
    ];
    const rows = requestRows([
        CRON,
        record({status: 500}),
        record({duration: 12, stack: frames, url: "/slow", rpc: null}),
    ]);
    expect(rows.map((r) => [r.duration, r.target, r.badge])).toEqual([
        [12, "/slow", "light"],
        [2, "res.partner.search_read", "danger"],
        [0.5, "Mail: send queued", "light"],
    ]);
    expect(rows[0].stackAnswer.threads[0].frames).toBe(frames);
    expect(rows[1].stackAnswer).toBe(null);
    expect(rows[0].segments.map((s) => [s.part, s.percent])).toEqual([
        ["cpu", 4.2],
        ["sql", 8.3],
        ["other", 87.5],
    ]);
});

test("load profile: verdict in words and the stacked bar", () => {
    const view = profileView({
        cpu_share: 0.88,
        sql_share: 0.02,
        other_share: 0.1,
        verdict: "cpu_bound",
        explanation: "CPU-bound: 88% of request time is Python CPU",
    });
    expect([view.label, view.badge, view.idle]).toEqual(["CPU-bound", "danger", false]);
    expect(view.segments.map((s) => s.percent)).toEqual([88, 2, 10]);
    expect(profileView({verdict: "io_bound"}).label).toBe("I/O-bound");
    expect(profileView({verdict: "idle"}).idle).toBe(true);
    expect(profileView(null)).toBe(null);
    expect(shareSegments(null).map((s) => s.share)).toEqual([0, 0, 0]);
    expect(busyCores(ROUTES, 2.3)).toBeCloseTo(1);
    expect(busyCores(ROUTES, 0)).toBe(null);
});

// ----------------------------------------------------------------------
// Mounted in the dashboard
// ----------------------------------------------------------------------

function json(body, status = 200) {
    return new Response(JSON.stringify(body), {
        status,
        headers: {"Content-Type": "application/json"},
    });
}

function snapshot() {
    return {
        server: {mode: "threaded", pid: 100, odoo_version: "18.0"},
        served_by: 100,
        taken_at: NOW,
        config: {workers: 0, max_cron_threads: 1},
        host: {cpu_count: 2, memory_total: 8e9, memory_available: 4e9},
        processes: [],
        threads: [],
        sql_unattributed: [],
        cron: {max_cron_threads: 1, runners: [], overdue: null},
        exits_last_hour: {},
    };
}

/** The history API's answer to ``params``: the route filter applied as the server does. */
function answer(params, requests) {
    const kinds = params.get("kinds").split(",");
    const route = params.get("route");
    const minDuration = params.get("min_duration");
    // Taken 10 s after ``since``: the routes' 2.3 s of CPU keep 0.23 cores busy.
    const since = Number(params.get("since"));
    const body = {taken_at: since + 10, since};
    if (kinds.includes("requests")) {
        body.requests = requests.filter(
            (r) =>
                (!route || routeKey(r) === route) &&
                (!minDuration || r.duration >= Number(minDuration))
        );
    }
    if (kinds.includes("routes")) {
        body.routes = ROUTES;
    }
    if (kinds.includes("profile")) {
        body.profile = {
            cpu_share: 0.25,
            sql_share: 0.6,
            other_share: 0.15,
            verdict: "io_bound",
            explanation:
                "I/O-bound: only 25% of request time is Python CPU, 60% in SQL.",
        };
    }
    return body;
}

function serve(requests) {
    const asked = [];
    onRpc(SNAPSHOT_URL, () => json(snapshot()), {pure: true});
    onRpc(
        HISTORY_URL,
        (request) => {
            const params = new URL(request.url, browser.location.origin).searchParams;
            asked.push(Object.fromEntries(params));
            return json(answer(params, requests));
        },
        {pure: true}
    );
    return asked;
}

async function openRequests() {
    defineWebModels();
    await mountWithCleanup(WebClient);
    await getService("action").doAction({
        type: "ir.actions.client",
        tag: "worker_inspector.dashboard",
    });
    await animationFrame();
    await contains(".o_worker_inspector_view_requests").click();
    await animationFrame();
}

const VIEW = ".o_worker_inspector_requests";
const ROUTE_ROWS = ".o_worker_inspector_routes tr.o_worker_inspector_route";
const REQUEST_ROWS = ".o_worker_inspector_slow_requests tr.o_worker_inspector_request";

test("the Requests tab: verdict, routes by total time, slowest requests", async () => {
    const frames = [
        {file: "my/main.py", line: 3, function: "slow", code: "x()", origin: "addon"},
    ];
    const asked = serve([
        record(),
        record({duration: 12, url: "/web/dataset/call_kw", rpc: null, stack: frames}),
        CRON,
    ]);
    await openRequests();
    expect(VIEW).toHaveAttribute("data-status", "ready");
    expect(asked).toHaveLength(1);
    expect(asked[0].kinds).toBe("requests,routes,profile");
    expect(Date.now() / 1000 - Number(asked[0].since)).toBeWithin(3599, 3601);
    // Live polling stops, the snapshot's process table is gone.
    expect(".o_worker_inspector_processes").toHaveCount(0);

    expect(".o_worker_inspector_load_profile").toHaveAttribute(
        "data-verdict",
        "io_bound"
    );
    expect(".o_worker_inspector_verdict").toHaveText("I/O-bound");
    expect(".o_worker_inspector_explanation").toHaveText(/60% in SQL/);
    expect(".o_worker_inspector_load_profile .o_worker_inspector_share").toHaveCount(3);
    expect(
        ".o_worker_inspector_load_profile .o_worker_inspector_share_sql"
    ).toHaveAttribute("style", "width: 60%");
    expect(".o_worker_inspector_busy_cores").toHaveText(
        "Request CPU: 0.23 of 2 cores busy on average"
    );

    expect(ROUTE_ROWS).toHaveCount(3);
    expect(`${ROUTE_ROWS}:first-child`).toHaveAttribute(
        "data-key",
        "res.partner.search_read"
    );
    expect(`${ROUTE_ROWS}:first-child [data-column="cpu_share"]`).toHaveText("10 %");
    expect(`${ROUTE_ROWS}:first-child [data-column="total"]`).toHaveText("8.0 s");
    await contains('.o_worker_inspector_routes th[data-column="count"]').click();
    expect(`${ROUTE_ROWS}:first-child`).toHaveAttribute(
        "data-key",
        "res.partner.search_read"
    );
    await contains('.o_worker_inspector_routes th[data-column="count"]').click();
    expect(`${ROUTE_ROWS}:first-child`).toHaveAttribute(
        "data-key",
        "cron:Mail: send queued"
    );

    expect(REQUEST_ROWS).toHaveCount(3);
    expect(
        `${REQUEST_ROWS}:first-child .o_worker_inspector_request_duration`
    ).toHaveText("12 s");
    expect(`${REQUEST_ROWS}[data-kind="cron"]`).toHaveText(/Mail: send queued/);
    expect(`${REQUEST_ROWS} .o_worker_inspector_kept_stack`).toHaveCount(1);
    await contains(`${REQUEST_ROWS} .o_worker_inspector_kept_stack`).click();
    expect(".modal .o_worker_inspector_frame").toHaveCount(1);
    expect(".modal .o_worker_inspector_stack_thread").toHaveText(/call_kw/);
});

test("a route row filters the requests on the server; the chip clears it", async () => {
    const asked = serve([record(), record({url: "/shop", rpc: null}), CRON]);
    await openRequests();
    expect(REQUEST_ROWS).toHaveCount(3);
    expect(".o_worker_inspector_route_chip").toHaveCount(0);

    await contains(`${ROUTE_ROWS}[data-key="res.partner.search_read"]`).click();
    await animationFrame();
    expect(asked.slice(1)).toEqual([
        {since: asked[1].since, kinds: "routes,profile"},
        {
            since: asked[1].since,
            kinds: "requests",
            route: "res.partner.search_read",
        },
    ]);
    expect(".o_worker_inspector_route_chip").toHaveText(/res\.partner\.search_read/);
    expect(".o_worker_inspector_requests_list").toHaveAttribute(
        "data-route",
        "res.partner.search_read"
    );
    expect(REQUEST_ROWS).toHaveCount(1);
    // Every route stays listed, the chosen one marked.
    expect(ROUTE_ROWS).toHaveCount(3);
    expect(`${ROUTE_ROWS}.table-active`).toHaveAttribute(
        "data-key",
        "res.partner.search_read"
    );

    await contains(".o_worker_inspector_min_duration").select("5");
    await animationFrame();
    expect(asked.at(-1)).toEqual({
        since: asked.at(-1).since,
        kinds: "requests",
        route: "res.partner.search_read",
        min_duration: "5",
    });
    expect(REQUEST_ROWS).toHaveCount(0);
    expect(".o_worker_inspector_slow_requests").toHaveText(/No request in this window/);

    // The keyboard opens a route as the mouse does.
    await contains(`${ROUTE_ROWS}[data-key="/web/dataset/call_kw"]`).press("Enter");
    await animationFrame();
    expect(".o_worker_inspector_route_chip").toHaveAttribute(
        "data-route",
        "/web/dataset/call_kw"
    );
    expect(asked.at(-1).route).toBe("/web/dataset/call_kw");

    await contains(".o_worker_inspector_route_clear").click();
    await contains(".o_worker_inspector_min_duration").select("");
    await animationFrame();
    expect(".o_worker_inspector_route_chip").toHaveCount(0);
    expect(".o_worker_inspector_requests_list").toHaveAttribute("data-route", "");
    expect(REQUEST_ROWS).toHaveCount(3);
    expect(asked.at(-1).kinds).toBe("requests,routes,profile");
});

test("an error of the API is shown, an empty log says so", async () => {
    onRpc(SNAPSHOT_URL, () => json(snapshot()), {pure: true});
    let fail = true;
    onRpc(
        HISTORY_URL,
        () =>
            fail
                ? json(
                      {error: {status: 503, reason: "The history is not recorded."}},
                      503
                  )
                : json({
                      taken_at: NOW,
                      since: NOW - 3600,
                      requests: [],
                      routes: [],
                      profile: {
                          cpu_share: 0,
                          sql_share: 0,
                          other_share: 0,
                          verdict: "idle",
                          explanation:
                              "Idle: 0 request(s) and jobs took 0.0 s over 3600 s.",
                      },
                  }),
        {pure: true}
    );
    await openRequests();
    expect(VIEW).toHaveAttribute("data-status", "error");
    expect(".o_worker_inspector_requests_error").toHaveText(
        "The history is not recorded. (HTTP 503)"
    );
    fail = false;
    await contains(".o_worker_inspector_requests_window").select("6");
    await animationFrame();
    expect(VIEW).toHaveAttribute("data-status", "ready");
    expect(".o_worker_inspector_requests_error").toHaveCount(0);
    expect(".o_worker_inspector_verdict").toHaveText("Idle");
    expect(
        ".o_worker_inspector_load_profile .o_worker_inspector_share_bar"
    ).toHaveCount(0);
    expect(ROUTE_ROWS).toHaveCount(0);
    expect(".o_worker_inspector_routes").toHaveText(
        /No request recorded in this window/
    );
    expect(REQUEST_ROWS).toHaveCount(0);
});

test("no polling while the browser tab is hidden", async () => {
    const asked = serve([record()]);
    await openRequests();
    expect(asked).toHaveLength(1);
    patchWithCleanup(document, {visibilityState: "hidden"});
    document.dispatchEvent(new Event("visibilitychange"));
    await animationFrame();
    expect(`${VIEW} .fa-pause`).toHaveCount(1);
    await advanceTime(60_000);
    expect(asked).toHaveLength(1);
    patchWithCleanup(document, {visibilityState: "visible"});
    document.dispatchEvent(new Event("visibilitychange"));
    await animationFrame();
    expect(asked).toHaveLength(2);
});
