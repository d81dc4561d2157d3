import { Component, onMounted, onWillUnmount, useExternalListener, useState } from "@odoo/owl";
import { browser } from "@web/core/browser/browser";
import { formatDateTime } from "@web/core/l10n/dates";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { Layout } from "@web/search/layout";
import { standardActionServiceProps } from "@web/webclient/actions/action_service";
import { formatBytes, formatPercent, formatSeconds } from "./format";
import {
    GAUGE_BAR_CLASS,
    countByRole,
    memoryGauge,
    roleLabels,
    sortProcesses,
    sortThreads,
    threadKindLabels,
} from "./snapshot";

const { DateTime } = luxon;

export const SNAPSHOT_URL = "/worker_inspector/api/snapshot";
export const REFRESH_INTERVALS = [1, 2, 5, 10, 30];
export const DEFAULT_INTERVAL = 5;
export const INTERVAL_STORAGE_KEY = "worker_inspector.dashboard.interval";

const ROLE_BADGE_CLASS = {
    master: "text-bg-dark",
    server: "text-bg-dark",
    http: "text-bg-primary",
    cron: "text-bg-warning",
    gevent: "text-bg-info",
};

function loadInterval() {
    const stored = parseInt(browser.localStorage.getItem(INTERVAL_STORAGE_KEY), 10);
    return REFRESH_INTERVALS.includes(stored) ? stored : DEFAULT_INTERVAL;
}

/**
 * Settings ▸ Technical ▸ Server Workers: polls the snapshot API and shows the
 * server's processes, the threads of the process that answered, and memory
 * against Odoo's limits.
 */
export class WorkerInspectorDashboard extends Component {
    static template = "worker_inspector.Dashboard";
    static components = { Layout };
    static props = { ...standardActionServiceProps };

    setup() {
        this.state = useState({
            snapshot: null,
            // {status, reason} of the last failed refresh, null after a success
            error: null,
            fetching: false,
            hidden: document.visibilityState === "hidden",
            interval: loadInterval(),
        });
        this.display = { controlPanel: {} };
        this.intervals = REFRESH_INTERVALS;
        this.roleLabels = roleLabels();
        this.threadKindLabels = threadKindLabels();
        this.formatBytes = formatBytes;
        this.formatSeconds = formatSeconds;
        this.formatPercent = formatPercent;
        this.timer = null;
        this.abortController = null;
        this.alive = true;

        useExternalListener(document, "visibilitychange", () => this.onVisibilityChange());
        onMounted(() => this.refresh());
        onWillUnmount(() => {
            this.alive = false;
            this.cancelTimer();
            this.abortController?.abort();
        });
    }

    // ------------------------------------------------------------------
    // Polling
    // ------------------------------------------------------------------

    cancelTimer() {
        if (this.timer) {
            browser.clearTimeout(this.timer);
            this.timer = null;
        }
    }

    /**
     * The next refresh starts ``interval`` seconds after the previous one
     * ended, so a slow server is never asked twice at once.
     */
    scheduleRefresh() {
        this.cancelTimer();
        if (!this.alive || this.state.hidden || this.isDenied) {
            return;
        }
        this.timer = browser.setTimeout(() => this.refresh(), this.state.interval * 1000);
    }

    async refresh() {
        if (this.state.fetching) {
            return;
        }
        this.cancelTimer();
        this.state.fetching = true;
        this.abortController = new AbortController();
        try {
            const { snapshot, error } = await this.fetchSnapshot(this.abortController.signal);
            if (!this.alive) {
                return;
            }
            if (error) {
                this.state.error = error;
                if (error.status === 401 || error.status === 403) {
                    // Never keep showing data the user may no longer see.
                    this.state.snapshot = null;
                }
            } else {
                this.state.snapshot = snapshot;
                this.state.error = null;
            }
        } finally {
            if (this.alive) {
                this.state.fetching = false;
                this.scheduleRefresh();
            }
        }
    }

    /**
     * The API is a plain GET route answering JSON (not JSON-RPC): the
     * browser's session cookie authenticates it.
     *
     * @returns {Promise<{snapshot?: Object, error?: {status: number|null, reason: string}}>}
     */
    async fetchSnapshot(signal) {
        let response;
        try {
            response = await browser.fetch(SNAPSHOT_URL, {
                credentials: "same-origin",
                cache: "no-store",
                headers: { Accept: "application/json" },
                signal,
            });
        } catch (error) {
            return {
                error: {
                    status: null,
                    reason: _t("The server could not be reached (%s).", error.message),
                },
            };
        }
        let payload = null;
        try {
            payload = await response.json();
        } catch {
            // A proxy error page, a crash page...: not our JSON.
        }
        if (response.ok && payload && !payload.error) {
            return { snapshot: payload };
        }
        const status = payload?.error?.status ?? response.status;
        let reason = payload?.error?.reason;
        if (!reason) {
            reason = _t("The server answered HTTP %(status)s %(text)s.", {
                status: response.status,
                text: response.statusText || "",
            });
        }
        return { error: { status, reason } };
    }

    onVisibilityChange() {
        this.state.hidden = document.visibilityState === "hidden";
        if (this.state.hidden) {
            this.cancelTimer();
        } else {
            this.refresh();
        }
    }

    onIntervalChange(ev) {
        const seconds = parseInt(ev.target.value, 10);
        if (!REFRESH_INTERVALS.includes(seconds)) {
            return;
        }
        this.state.interval = seconds;
        browser.localStorage.setItem(INTERVAL_STORAGE_KEY, String(seconds));
        if (!this.state.fetching) {
            this.scheduleRefresh();
        }
    }

    // ------------------------------------------------------------------
    // View data
    // ------------------------------------------------------------------

    get isDenied() {
        return [401, 403].includes(this.state.error?.status);
    }

    /**
     * @returns {"loading"|"forbidden"|"unauthenticated"|"error"|"ready"}
     */
    get status() {
        const { snapshot, error } = this.state;
        if (error?.status === 403) {
            return "forbidden";
        }
        if (error?.status === 401) {
            return "unauthenticated";
        }
        if (snapshot) {
            return "ready";
        }
        return error ? "error" : "loading";
    }

    intervalLabel(seconds) {
        return _t("%s s", seconds);
    }

    get updatedAt() {
        const takenAt = this.state.snapshot?.taken_at;
        if (!takenAt) {
            return "";
        }
        return DateTime.fromSeconds(takenAt).toLocaleString(DateTime.TIME_WITH_SECONDS);
    }

    get summary() {
        const { snapshot } = this.state;
        const { config, host, processes, threads } = snapshot;
        const roles = countByRole(processes);
        const totalRss = processes.reduce((sum, p) => sum + (p.rss || 0), 0);
        const totalVms = processes.reduce((sum, p) => sum + (p.vms || 0), 0);
        const prefork = snapshot.server.mode === "prefork";
        return {
            prefork,
            roles,
            httpRequestThreads: threads.filter((t) => t.kind === "http").length,
            cronThreads: threads.filter((t) => t.kind === "cron").length,
            maxCronThreads: config.max_cron_threads ?? 0,
            workers: config.workers ?? 0,
            totalRss,
            totalVms,
            memoryTotal: host.memory_total,
            memoryAvailable: host.memory_available,
            rssPercent: host.memory_total ? Math.min(100, (100 * totalRss) / host.memory_total) : 0,
            cpuCount: host.cpu_count,
        };
    }

    get processRows() {
        const { snapshot } = this.state;
        return sortProcesses(snapshot.processes).map((process) => {
            const soft = process.limit_memory_soft || 0;
            const hard = process.limit_memory_hard || 0;
            const gauge = memoryGauge(process.vms, soft, hard);
            return {
                process,
                servedBy: process.pid === snapshot.served_by,
                roleLabel: this.roleLabels[process.role] || process.role,
                roleClass: ROLE_BADGE_CLASS[process.role] || "text-bg-secondary",
                uptime: formatSeconds(snapshot.taken_at - process.started_at),
                startedAt: formatDateTime(DateTime.fromSeconds(process.started_at)),
                gauge,
                barClass: GAUGE_BAR_CLASS[gauge.level],
                gaugeTitle: this.gaugeTitle(process, soft, hard),
            };
        });
    }

    gaugeTitle(process, soft, hard) {
        if (!soft && !hard) {
            return _t("No memory limit applies to this process.");
        }
        return _t(
            "Virtual memory %(vms)s. Soft limit %(soft)s: above it the worker is recycled after its request. Hard limit %(hard)s: allocations beyond it fail.",
            {
                vms: formatBytes(process.vms),
                soft: soft ? formatBytes(soft) : _t("none"),
                hard: hard ? formatBytes(hard) : _t("none"),
            }
        );
    }

    limitsText(process) {
        const soft = process.limit_memory_soft || 0;
        const hard = process.limit_memory_hard || 0;
        if (!soft && !hard) {
            return _t("no limit");
        }
        return [soft && _t("soft %s", formatBytes(soft)), hard && _t("hard %s", formatBytes(hard))]
            .filter(Boolean)
            .join(" · ");
    }

    get threadRows() {
        return sortThreads(this.state.snapshot.threads).map((thread) => ({
            thread,
            kindLabel: this.threadKindLabels[thread.kind] || thread.kind,
        }));
    }
}

registry.category("actions").add("worker_inspector.dashboard", WorkerInspectorDashboard);
