/** @odoo-module **/
import {registry} from "@web/core/registry";

const PROCESS_ROWS =
    ".o_worker_inspector_processes tbody tr.o_worker_inspector_process";
const THREAD_ROWS = ".o_worker_inspector_threads tbody tr.o_worker_inspector_thread";
const SCOREBOARD_CELLS = ".o_worker_inspector_scoreboard .o_worker_inspector_cell";
// Roles (prefork) and thread kinds (threaded) that serve requests or run jobs.
const WORKERS = ["http", "cron"];
const DASHBOARD_MENU = "worker_inspector.menu_worker_inspector_dashboard";

const ROUTE_ROWS = ".o_worker_inspector_routes tr.o_worker_inspector_route";
const REQUEST_ROWS = ".o_worker_inspector_slow_requests tr.o_worker_inspector_request";
// Two refreshes of the Nodes view (NODES_REFRESH_SECONDS) and a margin.
const NODES_SETTLE_MS = 11000;
// A route every run has: the Live view polled it.
const SNAPSHOT_ROUTE = "/worker_inspector/api/snapshot";

/** The request log's views of the last hour, ``query`` added. */
async function fetchRequestLog(query) {
    const since = Math.floor(Date.now() / 1000) - 3600;
    const response = await fetch(
        `/worker_inspector/api/history?since=${since}&${query}`,
        {
            credentials: "same-origin",
            headers: {Accept: "application/json"},
        }
    );
    if (!response.ok) {
        throw new Error(`The history API answered HTTP ${response.status}`);
    }
    return response.json();
}

/** Resolves once ``ready()`` holds, fails after 10 s. */
async function waitFor(ready) {
    for (let i = 0; i < 100; i++) {
        if (ready()) {
            return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error("Timed out");
}

async function fetchSnapshot() {
    const response = await fetch("/worker_inspector/api/snapshot", {
        credentials: "same-origin",
        headers: {Accept: "application/json"},
    });
    if (!response.ok) {
        throw new Error(`The snapshot API answered HTTP ${response.status}`);
    }
    return response.json();
}

function sortedNumbers(values) {
    return values.map(Number).sort((a, b) => a - b);
}

/**
 * Opens Settings ▸ Technical ▸ Server Workers from the menus (Technical needs
 * debug mode) and checks the process table against the API.
 */
registry.category("web_tour.tours").add("worker_inspector_dashboard", {
    // /web: the web client on 17.0, 18.0 and 19.0 (/odoo exists since 18.0).
    url: "/web?debug=1",
    steps: () => [
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button:enabled",
            run: "click",
        },
        {
            content: "Open Settings",
            trigger: '.o_app[data-menu-xmlid="base.menu_administration"]',
            run: "click",
        },
        {
            content: "Open the Technical menu",
            trigger: '.o_menu_sections [data-menu-xmlid="base.menu_custom"]',
            run: "click",
        },
        {
            content: "Open Server Workers",
            trigger: `.dropdown-item[data-menu-xmlid="${DASHBOARD_MENU}"]`,
            run: "click",
        },
        {
            content: "The dashboard shows the server's processes",
            trigger: `.o_worker_inspector[data-status="ready"] ${PROCESS_ROWS}`,
        },
        {
            content:
                "One row per process of the API, same pids, the serving one marked",
            trigger: `.o_worker_inspector[data-status="ready"] ${PROCESS_ROWS}`,
            async run() {
                const snapshot = await fetchSnapshot();
                const rows = [...document.querySelectorAll(PROCESS_ROWS)];
                const shownPids = sortedNumbers(rows.map((row) => row.dataset.pid));
                const apiPids = sortedNumbers(snapshot.processes.map((p) => p.pid));
                if (rows.length !== snapshot.processes.length) {
                    throw new Error(
                        `${rows.length} process rows, the API lists ${snapshot.processes.length}`
                    );
                }
                if (JSON.stringify(shownPids) !== JSON.stringify(apiPids)) {
                    throw new Error(
                        `Rows show pids ${shownPids}, the API lists ${apiPids}`
                    );
                }
                // In prefork mode the tour's request and the dashboard's may
                // be served by different workers: check one marked row.
                const served = document.querySelectorAll(
                    `${PROCESS_ROWS}.o_worker_inspector_served`
                );
                if (
                    served.length !== 1 ||
                    !apiPids.includes(Number(served[0].dataset.pid))
                ) {
                    throw new Error(
                        `${served.length} rows marked as serving, expected one`
                    );
                }
            },
        },
        {
            content: "The Nodes view has one row per node of the API, this one marked",
            trigger: `.o_worker_inspector_nodes:has(table, .text-muted)`,
            async run() {
                // Every server of this database is a node, and a stopped one expires: the
                // list may change between the view's load and this one. The rows must match
                // the API once the view's next refresh (every 5 s) has caught up.
                const deadline = Date.now() + NODES_SETTLE_MS;
                let nodes = [];
                let rows = [];
                for (;;) {
                    const response = await fetch("/worker_inspector/api/nodes", {
                        credentials: "same-origin",
                        headers: {Accept: "application/json"},
                    });
                    nodes = await response.json();
                    rows = [
                        ...document.querySelectorAll(
                            ".o_worker_inspector_nodes tr.o_worker_inspector_node"
                        ),
                    ];
                    const shown = rows.map((row) => row.dataset.node).sort();
                    const listed = nodes.map((node) => node.node).sort();
                    if (JSON.stringify(shown) === JSON.stringify(listed)) {
                        break;
                    }
                    if (Date.now() > deadline) {
                        throw new Error(`Node rows ${shown}, the API lists ${listed}`);
                    }
                    await new Promise((resolve) => setTimeout(resolve, 500));
                }
                const serving = nodes.filter((node) => node.serving).length;
                const marked = document.querySelectorAll(
                    ".o_worker_inspector_nodes .o_worker_inspector_node_serving"
                ).length;
                if (marked !== serving) {
                    throw new Error(
                        `${marked} nodes marked as serving, the API says ${serving}`
                    );
                }
                // Each row's advice badge is the worst level its heartbeat published.
                for (const node of nodes) {
                    const levels = node.summary && node.summary.advice_levels;
                    const row = rows.find((r) => r.dataset.node === node.node);
                    const badge = row.querySelector(
                        ".o_worker_inspector_node_advice [data-level]"
                    );
                    const shownLevel = badge ? badge.dataset.level : null;
                    if (shownLevel !== (levels ? levels.worst : null)) {
                        throw new Error(
                            `Node ${node.node}: advice ${shownLevel} shown, ${levels && levels.worst} published`
                        );
                    }
                }
            },
        },
        {
            content:
                "The scoreboard has one cell per worker, the one that answered busy",
            trigger: `.o_worker_inspector[data-status="ready"] ${SCOREBOARD_CELLS}`,
            async run() {
                const snapshot = await fetchSnapshot();
                const cells = [...document.querySelectorAll(SCOREBOARD_CELLS)];
                let expected;
                let shown;
                if (snapshot.server.mode === "prefork") {
                    // Worker processes are the same for the dashboard and this request.
                    expected = sortedNumbers(
                        snapshot.processes
                            .filter((p) => WORKERS.includes(p.role))
                            .map((p) => p.pid)
                    );
                    shown = sortedNumbers(cells.map((cell) => cell.dataset.pid));
                } else {
                    // Request threads come and go: compare with the thread
                    // table rendered from the same snapshot as the scoreboard.
                    const threadRows = WORKERS.flatMap((kind) => [
                        ...document.querySelectorAll(
                            `${THREAD_ROWS}[data-kind="${kind}"]`
                        ),
                    ]);
                    expected = sortedNumbers(
                        threadRows.map((row) => row.dataset.nativeId)
                    );
                    shown = sortedNumbers(cells.map((cell) => cell.dataset.tid));
                }
                if (JSON.stringify(shown) !== JSON.stringify(expected)) {
                    throw new Error(`Scoreboard cells ${shown}, expected ${expected}`);
                }
                // The request that took the dashboard's snapshot was running.
                const busy = cells.filter((cell) =>
                    ["busy", "sql"].includes(cell.dataset.state)
                );
                if (!busy.length) {
                    throw new Error(
                        "No busy cell: the dashboard's own request is not shown"
                    );
                }
                const servedPid = document.querySelector(
                    `${PROCESS_ROWS}.o_worker_inspector_served`
                ).dataset.pid;
                if (busy.every((cell) => cell.dataset.pid !== servedPid)) {
                    throw new Error(
                        `The worker that answered (${servedPid}) is not busy`
                    );
                }
            },
        },
        {
            content: "The threads of the serving process are listed",
            trigger: THREAD_ROWS,
        },
        {
            content: "The Advice panel lists every check of the API, with its level",
            trigger: ".o_worker_inspector_advice [data-advice]",
            async run() {
                const snapshot = await fetchSnapshot();
                const shown = [
                    ...document.querySelectorAll(
                        ".o_worker_inspector_advice [data-advice]"
                    ),
                ];
                const ids = (items) => [...items].sort();
                const apiIds = ids(snapshot.advice.map((item) => item.id));
                const shownIds = ids(shown.map((li) => li.dataset.advice));
                if (JSON.stringify(apiIds) !== JSON.stringify(shownIds)) {
                    throw new Error(`Advice shows ${shownIds}, the API has ${apiIds}`);
                }
            },
        },
        {
            content: "The scheduled actions of the database are listed",
            trigger: ".o_worker_inspector_cron_health tr[data-cron-id]",
            async run() {
                const response = await fetch("/worker_inspector/api/crons", {
                    headers: {Accept: "application/json"},
                });
                const crons = await response.json();
                const rows = document.querySelectorAll(
                    ".o_worker_inspector_cron_health tr[data-cron-id]"
                );
                if (rows.length !== crons.length) {
                    throw new Error(
                        `${rows.length} rows, the API lists ${crons.length}`
                    );
                }
            },
        },
        {
            content: "Ask for the stack of the serving process",
            trigger: `${PROCESS_ROWS}.o_worker_inspector_served .o_worker_inspector_stack_button`,
            run: "click",
        },
        {
            content: "Its threads are shown with their frames, Odoo's among them",
            trigger: ".o_worker_inspector_stack_thread .o_worker_inspector_frame",
            run() {
                const frames = [
                    ...document.querySelectorAll(
                        ".o_worker_inspector_stack .o_worker_inspector_frame"
                    ),
                ].map((li) => li.textContent);
                if (!frames.some((text) => text.includes("odoo/"))) {
                    throw new Error(`No frame of Odoo among ${frames.length} frames`);
                }
            },
        },
        {
            content: "Close the stack",
            trigger: ".modal-footer button:contains(Close)",
            run: "click",
        },
        {
            content: "The dialog is gone",
            trigger: "body:not(:has(.o_worker_inspector_stack))",
        },
        {
            content: "Open the History view",
            trigger: ".o_worker_inspector_view_history",
            run: "click",
        },
        {
            content:
                "History: two charts drawn by Chart.js, one exit row per exit of the API",
            trigger:
                '.o_worker_inspector_history[data-status="ready"] .o_worker_inspector_exits tbody tr',
            async run() {
                const canvases = document.querySelectorAll(
                    ".o_worker_inspector_history canvas"
                );
                if (canvases.length !== 2 || ![...canvases].every((c) => c.width > 0)) {
                    throw new Error(`${canvases.length} charts drawn, expected 2`);
                }
                if (typeof Chart === "undefined" || !Chart.getChart(canvases[0])) {
                    throw new Error("Chart.js did not draw the memory chart");
                }
                const response = await fetch(
                    `/worker_inspector/api/history?since=${Math.floor(Date.now() / 1000) - 3600}`,
                    {credentials: "same-origin", headers: {Accept: "application/json"}}
                );
                if (!response.ok) {
                    throw new Error(`The history API answered HTTP ${response.status}`);
                }
                const history = await response.json();
                const rows = document.querySelectorAll(
                    ".o_worker_inspector_exits tr.o_worker_inspector_exit"
                );
                // Exits only accumulate: the API, asked later, knows at least as many.
                if (rows.length > history.exits.length) {
                    throw new Error(
                        `${rows.length} exit rows, the API lists ${history.exits.length}`
                    );
                }
                // A fresh server may have no point yet: the series itself is there.
                if (!(history.series?.interval > 0)) {
                    throw new Error("The history API has no series");
                }
            },
        },
        {
            content: "Open the Requests view",
            trigger: ".o_worker_inspector_view_requests",
            run: "click",
        },
        {
            content:
                "Requests: the load profile's verdict, the routes of the API with the dashboard's own",
            trigger: `.o_worker_inspector_requests[data-status="ready"] ${ROUTE_ROWS}`,
            async run() {
                const verdict = document.querySelector(
                    ".o_worker_inspector_load_profile"
                )?.dataset.verdict;
                if (!["cpu_bound", "io_bound", "mixed", "idle"].includes(verdict)) {
                    throw new Error(`No load profile verdict shown (${verdict})`);
                }
                const log = await fetchRequestLog("kinds=routes");
                const listed = new Set(log.routes.map((route) => route.key));
                const shown = [...document.querySelectorAll(ROUTE_ROWS)].map(
                    (row) => row.dataset.key
                );
                // Requests only accumulate: the API, asked later, knows every route shown.
                const unknown = shown.filter((key) => !listed.has(key));
                if (unknown.length) {
                    throw new Error(`Routes ${unknown} are not in the API's routes`);
                }
                if (!listed.has(SNAPSHOT_ROUTE)) {
                    throw new Error(
                        `The dashboard's own ${SNAPSHOT_ROUTE} is not recorded`
                    );
                }
                if (!document.querySelector(REQUEST_ROWS)) {
                    throw new Error("No slow request listed");
                }
                // The table shows the costliest routes first: the rest on demand.
                const all = document.querySelector(".o_worker_inspector_routes_all");
                if (!shown.includes(SNAPSHOT_ROUTE) && all) {
                    all.click();
                }
            },
        },
        {
            content: "A route row shows that route's requests",
            trigger: `${ROUTE_ROWS}[data-key="${SNAPSHOT_ROUTE}"]`,
            run: "click",
        },
        {
            content: "The chip names the route, every request listed is of that route",
            trigger: `.o_worker_inspector_route_chip[data-route="${SNAPSHOT_ROUTE}"]`,
            async run() {
                const list = document.querySelector(
                    ".o_worker_inspector_requests_list"
                );
                await waitFor(() => list.dataset.route === SNAPSHOT_ROUTE);
                const keys = [...document.querySelectorAll(REQUEST_ROWS)].map(
                    (row) => row.dataset.routeKey
                );
                if (!keys.length || keys.some((key) => key !== SNAPSHOT_ROUTE)) {
                    throw new Error(
                        `Requests of routes ${keys}, expected ${SNAPSHOT_ROUTE} only`
                    );
                }
            },
        },
        {
            content: "The chip clears the filter",
            trigger: ".o_worker_inspector_route_clear",
            run: "click",
        },
        {
            content: "Every route's requests again",
            trigger:
                '.o_worker_inspector_requests:not(:has(.o_worker_inspector_route_chip)) .o_worker_inspector_requests_list[data-route=""]',
            run() {
                const keys = new Set(
                    [...document.querySelectorAll(REQUEST_ROWS)].map(
                        (row) => row.dataset.routeKey
                    )
                );
                if (keys.size < 2) {
                    throw new Error(
                        `Requests of ${keys.size} route(s) only: ${[...keys]}`
                    );
                }
            },
        },
        {
            content: "Back to the live view",
            trigger: ".o_worker_inspector_view_live",
            run: "click",
        },
        {
            content: "The live view is back",
            trigger: `.o_worker_inspector[data-status="ready"] ${PROCESS_ROWS}`,
        },
    ],
});
