import { registry } from "@web/core/registry";

const PROCESS_ROWS = ".o_worker_inspector_processes tbody tr.o_worker_inspector_process";
const DASHBOARD_MENU = "worker_inspector.menu_worker_inspector_dashboard";

async function fetchSnapshot() {
    const response = await fetch("/worker_inspector/api/snapshot", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
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
    url: "/odoo?debug=1",
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
            content: "One row per process of the API, same pids, the serving one marked",
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
                    throw new Error(`Rows show pids ${shownPids}, the API lists ${apiPids}`);
                }
                // In prefork mode the tour's request and the dashboard's may
                // be served by different workers: check one marked row.
                const served = document.querySelectorAll(
                    `${PROCESS_ROWS}.o_worker_inspector_served`
                );
                if (served.length !== 1 || !apiPids.includes(Number(served[0].dataset.pid))) {
                    throw new Error(`${served.length} rows marked as serving, expected one`);
                }
            },
        },
        {
            content: "The threads of the serving process are listed",
            trigger: ".o_worker_inspector_threads tbody tr.o_worker_inspector_thread",
        },
    ],
});
