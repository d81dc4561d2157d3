/** @odoo-module **/
import {
    Component,
    onMounted,
    onWillUnmount,
    useExternalListener,
    useState,
} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {ConfirmationDialog} from "@web/core/confirmation_dialog/confirmation_dialog";
import {formatDateTime} from "@web/core/l10n/dates";
import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {Layout} from "@web/search/layout";
import {useService} from "@web/core/utils/hooks";
import {session} from "@web/session";
import {standardActionServiceProps} from "@web/webclient/actions/action_service";
import {formatBytes, formatPercent, formatSeconds} from "./format";
import {
    GAUGE_BAR_CLASS,
    canRecycle,
    countByRole,
    degradedReasons,
    isBusy,
    memoryGauge,
    roleLabels,
    scoreboardCells,
    sortProcesses,
    sortThreads,
    threadKindLabels,
    workingSessions,
} from "./snapshot";

const {DateTime} = luxon;

export const SNAPSHOT_URL = "/worker_inspector/api/snapshot";
export const RECYCLE_URL = "/worker_inspector/api/recycle";
export const REFRESH_INTERVALS = [1, 2, 5, 10, 30];
export const DEFAULT_INTERVAL = 5;
export const INTERVAL_STORAGE_KEY = "worker_inspector.dashboard.interval";

const CELL_STATE_CLASS = {
    idle: "text-bg-success",
    busy: "text-bg-warning",
    sql: "text-bg-danger",
};

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
    static components = {Layout};
    static props = {...standardActionServiceProps};

    setup() {
        this.state = useState({
            snapshot: null,
            // {status, reason} of the last failed refresh, null after a success
            error: null,
            fetching: false,
            hidden: document.visibilityState === "hidden",
            interval: loadInterval(),
        });
        this.action = useService("action");
        this.dialog = useService("dialog");
        this.notification = useService("notification");
        this.display = {controlPanel: {}};
        this.intervals = REFRESH_INTERVALS;
        this.roleLabels = roleLabels();
        this.threadKindLabels = threadKindLabels();
        this.formatBytes = formatBytes;
        this.formatSeconds = formatSeconds;
        this.formatPercent = formatPercent;
        this.timer = null;
        this.abortController = null;
        this.alive = true;

        useExternalListener(document, "visibilitychange", () =>
            this.onVisibilityChange()
        );
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
        this.timer = browser.setTimeout(
            () => this.refresh(),
            this.state.interval * 1000
        );
    }

    async refresh() {
        if (this.state.fetching) {
            return;
        }
        this.cancelTimer();
        this.state.fetching = true;
        this.abortController = new AbortController();
        try {
            const {snapshot, error} = await this.fetchSnapshot(
                this.abortController.signal
            );
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
                headers: {Accept: "application/json"},
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
            return {snapshot: payload};
        }
        const status = payload?.error?.status ?? response.status;
        let reason = payload?.error?.reason;
        if (!reason) {
            reason = _t("The server answered HTTP %(status)s %(text)s.", {
                status: response.status,
                text: response.statusText || "",
            });
        }
        return {error: {status, reason}};
    }

    // ------------------------------------------------------------------
    // Recycling a worker
    // ------------------------------------------------------------------

    onRecycleClick(process) {
        this.dialog.add(ConfirmationDialog, {
            title: _t("Recycle %(role)s %(pid)s?", {
                role: this.roleLabels[process.role],
                pid: process.pid,
            }),
            body: _t(
                "The worker finishes its current request, then exits; the master starts a new one."
            ),
            confirmLabel: _t("Recycle"),
            confirm: () => this.recycle(process.pid),
            cancel: () => {},
        });
    }

    /**
     * POST to the recycle route (graceful: SIGINT), with the page's CSRF
     * token, then refresh to show the new worker.
     */
    async recycle(pid) {
        let response;
        let payload = null;
        try {
            response = await browser.fetch(RECYCLE_URL, {
                method: "POST",
                credentials: "same-origin",
                headers: {Accept: "application/json"},
                body: new URLSearchParams({pid, csrf_token: odoo.csrf_token}),
            });
            payload = await response.json();
        } catch (error) {
            if (!response) {
                this.notification.add(
                    _t("The server could not be reached (%s).", error.message),
                    {type: "danger"}
                );
                return;
            }
        }
        if (response.ok && payload && !payload.error) {
            this.notification.add(
                _t("Worker %s is being recycled; the master starts a new one.", pid),
                {type: "success"}
            );
        } else {
            const reason =
                payload?.error?.reason ||
                _t("The server answered HTTP %(status)s %(text)s.", {
                    status: response.status,
                    text: response.statusText || "",
                });
            this.notification.add(reason, {
                title: _t("Worker %s was not recycled", pid),
                type: "danger",
            });
        }
        this.refresh();
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

    /**
     * Whether the API reports what workers are doing (older servers do not).
     */
    get hasActivity() {
        return this.state.snapshot.processes.some((process) => "activity" in process);
    }

    /**
     * Why part of the snapshot is missing: the activity board cannot be used
     * (e.g. its directory is not private), or PostgreSQL could not be read.
     */
    get degradedReasons() {
        return degradedReasons(this.state.snapshot);
    }

    formatTimestamp(seconds) {
        return seconds ? formatDateTime(DateTime.fromSeconds(seconds)) : "";
    }

    get isDenied() {
        return [401, 403].includes(this.state.error?.status);
    }

    /**
     * @returns {"loading"|"forbidden"|"unauthenticated"|"error"|"ready"}
     */
    get status() {
        const {snapshot, error} = this.state;
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
        const {snapshot} = this.state;
        const {config, host, processes, threads} = snapshot;
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
            rssPercent: host.memory_total
                ? Math.min(100, (100 * totalRss) / host.memory_total)
                : 0,
            cpuCount: host.cpu_count,
        };
    }

    get processRows() {
        const {snapshot} = this.state;
        return sortProcesses(snapshot.processes).map((process) => {
            const soft = process.limit_memory_soft || 0;
            const hard = process.limit_memory_hard || 0;
            const gauge = memoryGauge(process.vms, soft, hard);
            return {
                process,
                activity: process.activity
                    ? this.describeActivity(process.activity)
                    : null,
                sessions: workingSessions(process.sql),
                idleSessions:
                    (process.sql || []).length - workingSessions(process.sql).length,
                servedBy: process.pid === snapshot.served_by,
                recyclable: canRecycle(snapshot, process),
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
        return [
            soft && _t("soft %s", formatBytes(soft)),
            hard && _t("hard %s", formatBytes(hard)),
        ]
            .filter(Boolean)
            .join(" · ");
    }

    get threadRows() {
        return sortThreads(this.state.snapshot.threads).map((thread) => {
            const activity = thread.activity
                ? this.describeActivity(thread.activity)
                : null;
            return {
                thread,
                kindLabel: this.threadKindLabels[thread.kind] || thread.kind,
                user:
                    thread.activity?.login || thread.uid || thread.activity?.uid || "",
                activity,
                what: (activity?.busy && activity.what) || thread.url || "",
                sessions: workingSessions(thread.sql),
            };
        });
    }

    /**
     * Sessions PostgreSQL names after the prefork master that no running
     * request or job claimed (workers inherit the master's connection name).
     * Shown only when some are doing something: idle pooled ones are noise.
     */
    get unattributedSessions() {
        const sessions = this.state.snapshot.sql_unattributed || [];
        const working = workingSessions(sessions);
        if (!working.length) {
            return null;
        }
        return {working, idleCount: sessions.length - working.length};
    }

    /**
     * What a worker is doing, for humans: busy on a URL or a scheduled
     * action (and for how long), or idle since its last one.
     */
    describeActivity(activity) {
        const busy = isBusy(activity);
        const job = activity.cron_job;
        let what = "";
        if (job) {
            what = _t("Scheduled action “%(name)s” (#%(id)s)", {
                name: job.name,
                id: job.id,
            });
        } else if (activity.url) {
            what = activity.url;
        }
        const user = activity.login || (activity.uid ? _t("uid %s", activity.uid) : "");
        const who = [user, activity.db].filter(Boolean).join(" · ");
        return {
            busy,
            // A cron worker or thread counts no requests.
            cron: activity.kind === "cron",
            stateLabel: busy ? _t("busy") : _t("idle"),
            stateClass: busy ? "text-bg-warning" : "text-bg-success",
            elapsed: formatSeconds(activity.elapsed),
            what,
            who,
            requests: activity.requests,
        };
    }

    get scoreboard() {
        const {snapshot} = this.state;
        const cells = scoreboardCells(snapshot).map((cell) => ({
            ...cell,
            className: CELL_STATE_CLASS[cell.state],
            title: this.cellTitle(cell),
            elapsed: isBusy(cell.activity) ? formatSeconds(cell.activity.elapsed) : "",
        }));
        const counts = {idle: 0, busy: 0, sql: 0};
        for (const cell of cells) {
            counts[cell.state]++;
        }
        return {
            cells,
            counts,
            utilization: snapshot.utilization,
            httpBusy: snapshot.http_busy,
            httpCapacity: snapshot.http_capacity,
            basis: snapshot.utilization_basis,
            longestBusy: snapshot.longest_busy,
        };
    }

    cellTitle(cell) {
        const who =
            cell.tid === null
                ? _t("%(role)s %(pid)s", {
                      role: this.roleLabels[cell.role],
                      pid: cell.pid,
                  })
                : _t("%(kind)s thread %(tid)s", {
                      kind: this.threadKindLabels[cell.role],
                      tid: cell.label,
                  });
        if (!cell.activity) {
            return _t("%s: idle, nothing run yet", who);
        }
        const info = this.describeActivity(cell.activity);
        const state = {
            idle: _t("idle for %s", info.elapsed),
            busy: _t("busy for %s", info.elapsed),
            sql: _t("busy for %s, running SQL", info.elapsed),
        }[cell.state];
        return [`${who}: ${state}`, info.what, info.who].filter(Boolean).join("\n");
    }

    get cron() {
        const {snapshot} = this.state;
        const cron = snapshot.cron;
        if (!cron) {
            return null;
        }
        const prefork = snapshot.server.mode === "prefork";
        return {
            maxCronThreads: cron.max_cron_threads,
            runners: (cron.runners || []).map((runner) => ({
                key: `${runner.pid}-${runner.tid ?? ""}`,
                label: prefork
                    ? _t("Cron worker %s", runner.pid)
                    : runner.name || _t("thread %s", runner.tid),
                activity: runner.activity
                    ? this.describeActivity(runner.activity)
                    : null,
                job: isBusy(runner.activity) ? runner.activity.cron_job : null,
            })),
            overdue: cron.overdue,
        };
    }

    /**
     * Scheduled actions of the database this page is logged in can be opened.
     */
    canOpenCron(job) {
        return Boolean(job?.id) && (!job.db || job.db === session.db);
    }

    openCron(job) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "ir.cron",
            res_id: job.id,
            views: [[false, "form"]],
            target: "current",
        });
    }
}

registry
    .category("actions")
    .add("worker_inspector.dashboard", WorkerInspectorDashboard);
