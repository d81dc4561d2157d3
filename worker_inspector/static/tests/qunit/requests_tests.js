/** @odoo-module **/
// The Requests view on Odoo 17.0, whose web client has QUnit and no HOOT
// (static/tests/requests_view.test.js runs on 18.0 and later). Only modules
// every series has: 18.0+ also load this file in their legacy QUnit bundle.
import {browser} from "@web/core/browser/browser";
import {localization} from "@web/core/l10n/localization";
import {makeTestEnv} from "@web/../tests/helpers/mock_env";
import {
    click,
    editSelect,
    getFixture,
    mount,
    nextTick,
    patchWithCleanup,
} from "@web/../tests/helpers/utils";

import {
    nextSort,
    profileView,
    requestQueries,
    requestRows,
    routeKey,
    routeRows,
    sortRoutes,
} from "@worker_inspector/requests_view/requests_model";
import {RequestsView} from "@worker_inspector/requests_view/requests_view";

const NOW = 1_700_000_000;
const ENGLISH = {decimalPoint: ".", thousandsSep: ",", grouping: [3, 0]};

// Rows of the API's ``routes`` and records of its ``requests``.
const ROUTES = [
    {
        key: "/web/webclient/load_menus",
        count: 4,
        total: 2,
        p50: 0.5,
        p95: 0.6,
        p99: 0.6,
        max: 0.6,
        cpu_time: 1.5,
        sql_time: 0.25,
    },
    {
        key: "res.partner.search_read",
        count: 8,
        total: 4,
        p50: 0.4,
        p95: 1,
        p99: 1,
        max: 1,
        cpu_time: 0.4,
        sql_time: 3,
    },
];

function record(extra = {}) {
    return {
        pid: 4242,
        kind: "http",
        started_at: NOW - 60,
        duration: 1,
        cpu_time: 0.1,
        sql_count: 5,
        sql_time: 0.75,
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

const REQUESTS = [
    record(),
    record({
        duration: 0.6,
        cpu_time: 0.5,
        sql_time: 0.05,
        url: "/web/webclient/load_menus",
        rpc: null,
        status: 500,
    }),
];

/** The history API's answer to ``url``, the route filter applied as the server does. */
function answer(url) {
    const params = new URL(url, "http://localhost").searchParams;
    const kinds = params.get("kinds").split(",");
    const route = params.get("route");
    const body = {taken_at: NOW, since: Number(params.get("since"))};
    if (kinds.includes("requests")) {
        body.requests = REQUESTS.filter((r) => !route || routeKey(r) === route);
    }
    if (kinds.includes("routes")) {
        body.routes = ROUTES;
    }
    if (kinds.includes("profile")) {
        body.profile = {
            cpu_share: 0.29,
            sql_share: 0.57,
            other_share: 0.14,
            verdict: "io_bound",
            explanation:
                "I/O-bound: only 29% of request time is Python CPU, 57% in SQL.",
        };
    }
    return body;
}

/** Waits until ``ready()`` holds (fetches and renders are asynchronous). */
async function until(ready) {
    for (let i = 0; i < 50 && !ready(); i++) {
        await nextTick();
    }
}

let saved = null;

QUnit.module("worker_inspector requests", {
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

QUnit.test(
    "worker_inspector: routes sorted and shared, a route's own query",
    (assert) => {
        const rows = routeRows(ROUTES);
        assert.deepEqual(
            rows.map((r) => [r.key, r.cpu_share, r.sql_share]),
            [
                ["/web/webclient/load_menus", 0.75, 0.125],
                ["res.partner.search_read", 0.1, 0.75],
            ]
        );
        assert.deepEqual(
            sortRoutes(rows).map((r) => r.key),
            ["res.partner.search_read", "/web/webclient/load_menus"]
        );
        const byCpu = nextSort({column: "total", descending: true}, "cpu_share");
        assert.strictEqual(sortRoutes(rows, byCpu)[0].key, "/web/webclient/load_menus");
        assert.deepEqual(nextSort(byCpu, "cpu_share"), {
            column: "cpu_share",
            descending: false,
        });
        assert.deepEqual(requestQueries({since: 5, route: "res.partner.search_read"}), [
            {since: 5, kinds: ["routes", "profile"]},
            {
                since: 5,
                kinds: ["requests"],
                route: "res.partner.search_read",
                min_duration: null,
            },
        ]);
        const [first] = requestRows(REQUESTS);
        assert.deepEqual([first.split.cpu, first.split.sql], [0.1, 0.75]);
        assert.ok(Math.abs(first.split.other - 0.15) < 1e-9);
        assert.strictEqual(first.target, "res.partner.search_read");
        assert.strictEqual(profileView({verdict: "cpu_bound"}).label, "CPU-bound");
    }
);

QUnit.test(
    "worker_inspector: the Requests view, a route row filters, the chip clears",
    async (assert) => {
        const asked = [];
        patchWithCleanup(browser, {
            fetch: async (url) => {
                asked.push(new URL(url, "http://localhost").searchParams);
                return new Response(JSON.stringify(answer(url)), {
                    status: 200,
                    headers: {"Content-Type": "application/json"},
                });
            },
            setTimeout: () => 0,
            clearTimeout: () => {},
        });
        const target = getFixture();
        const env = await makeTestEnv();
        await mount(RequestsView, target, {env, props: {cores: 2}});
        const view = target.querySelector(".o_worker_inspector_requests");
        await until(() => view.dataset.status === "ready");
        assert.strictEqual(view.dataset.status, "ready");
        assert.strictEqual(asked.length, 1);
        assert.strictEqual(asked[0].get("kinds"), "requests,routes,profile");
        assert.strictEqual(
            target.querySelector(".o_worker_inspector_verdict").textContent.trim(),
            "I/O-bound"
        );
        assert.strictEqual(
            target.querySelectorAll(
                ".o_worker_inspector_load_profile .o_worker_inspector_share"
            ).length,
            3
        );
        const routeKeys = () =>
            [...target.querySelectorAll("tr.o_worker_inspector_route")].map(
                (tr) => tr.dataset.key
            );
        assert.deepEqual(routeKeys(), [
            "res.partner.search_read",
            "/web/webclient/load_menus",
        ]);
        await click(target, 'th[data-column="key"]');
        assert.deepEqual(routeKeys(), [
            "/web/webclient/load_menus",
            "res.partner.search_read",
        ]);
        const requestRowsShown = () =>
            target.querySelectorAll("tr.o_worker_inspector_request");
        assert.strictEqual(requestRowsShown().length, 2);
        assert.ok(
            target.querySelector(".o_worker_inspector_request_status.text-bg-danger"),
            "the failed request's status is red"
        );

        await click(
            target,
            'tr.o_worker_inspector_route[data-key="res.partner.search_read"]'
        );
        await until(() => requestRowsShown().length === 1);
        assert.deepEqual(
            asked.slice(1).map((params) => [params.get("kinds"), params.get("route")]),
            [
                ["routes,profile", null],
                ["requests", "res.partner.search_read"],
            ]
        );
        assert.strictEqual(requestRowsShown().length, 1);
        assert.strictEqual(
            requestRowsShown()[0].dataset.routeKey,
            "res.partner.search_read"
        );
        assert.ok(
            target
                .querySelector(".o_worker_inspector_route_chip")
                .textContent.includes("res.partner.search_read")
        );
        assert.strictEqual(routeKeys().length, 2, "every route stays listed");

        await editSelect(target, ".o_worker_inspector_min_duration", "5");
        await until(() => asked.at(-1).get("min_duration") === "5");
        assert.strictEqual(asked.at(-1).get("route"), "res.partner.search_read");

        await click(target, ".o_worker_inspector_route_clear");
        await until(() => requestRowsShown().length === 2);
        assert.notOk(target.querySelector(".o_worker_inspector_route_chip"));
        assert.strictEqual(asked.at(-1).get("route"), null);
        assert.strictEqual(asked.at(-1).get("kinds"), "requests,routes,profile");
    }
);
