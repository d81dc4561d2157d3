/** @odoo-module **/
import {Component, onWillUnmount, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {ConfirmationDialog} from "@web/core/confirmation_dialog/confirmation_dialog";
import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {useService} from "@web/core/utils/hooks";
import {Layout} from "@web/search/layout";
import {standardActionServiceProps} from "@web/webclient/actions/action_service";
import {AdvicePanel} from "../advice_panel/advice_panel";
import {fetchSnapshot, recycleWorker} from "../api";
import {CronHealth} from "../cron_health/cron_health";
import {CronPanel} from "../cron_panel/cron_panel";
import {HistoryPanel} from "../history_panel/history_panel";
import {NodesView} from "../nodes_view/nodes_view";
import {usePolling} from "../polling/use_polling";
import {ProcessTable} from "../process_table/process_table";
import {RequestsView} from "../requests_view/requests_view";
import {Scoreboard} from "../scoreboard/scoreboard";
import {SqlSessions} from "../sql_sessions/sql_sessions";
import {StackDialog} from "../stack_dialog/stack_dialog";
import {SummaryCards} from "../summary_cards/summary_cards";
import {ThreadTable} from "../thread_table/thread_table";
import {
    cronOf,
    degradedReasons,
    hasActivity,
    processRows,
    roleLabels,
    scoreboardOf,
    summaryOf,
    threadRows,
    unattributedSessions,
} from "../view_model";

const {DateTime} = luxon;

export const REFRESH_INTERVALS = [1, 2, 5, 10, 30];
export const DEFAULT_INTERVAL = 5;
export const INTERVAL_STORAGE_KEY = "worker_inspector.dashboard.interval";

function loadInterval() {
    const stored = parseInt(browser.localStorage.getItem(INTERVAL_STORAGE_KEY), 10);
    return REFRESH_INTERVALS.includes(stored) ? stored : DEFAULT_INTERVAL;
}

/**
 * Settings ▸ Technical ▸ Server Workers: the client action. It owns the state
 * (the last snapshot, the last error) and the polling; the components below
 * only show what view_model.js derives from the snapshot.
 */
export class WorkerInspectorDashboard extends Component {
    static template = "worker_inspector.Dashboard";
    static components = {
        AdvicePanel,
        CronHealth,
        CronPanel,
        HistoryPanel,
        Layout,
        NodesView,
        ProcessTable,
        RequestsView,
        Scoreboard,
        SqlSessions,
        SummaryCards,
        ThreadTable,
    };
    static props = {...standardActionServiceProps};

    setup() {
        this.state = useState({
            snapshot: null,
            // {status, reason} of the last failed refresh, null after a success
            error: null,
            fetching: false,
            interval: loadInterval(),
            // "live": the snapshot, polled; "history": exits and series;
            // "requests": the request log's routes, slow requests, load profile
            view: "live",
        });
        this.action = useService("action");
        this.dialog = useService("dialog");
        this.notification = useService("notification");
        this.display = {controlPanel: {}};
        this.intervals = REFRESH_INTERVALS;
        this.abortController = null;
        this.alive = true;

        // The next refresh starts ``interval`` seconds after the previous one
        // ended; the History and Requests views refresh themselves.
        this.polling = usePolling(() => this.load(), {
            getInterval: () => this.state.interval * 1000,
            isActive: () => this.state.view === "live",
        });
        onWillUnmount(() => {
            this.alive = false;
            this.abortController?.abort();
        });
    }

    // ------------------------------------------------------------------
    // Polling
    // ------------------------------------------------------------------

    /** Refresh now (the button, after a recycle); the timer restarts after it. */
    refresh() {
        return this.polling.refresh();
    }

    /** One snapshot; ``false`` (no more polling) when access is denied. */
    async load() {
        this.state.fetching = true;
        this.abortController = new AbortController();
        try {
            const {snapshot, error} = await fetchSnapshot(this.abortController.signal);
            if (!this.alive) {
                return false;
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
            }
        }
        return !this.isDenied;
    }

    setView(view) {
        this.state.view = view;
        if (view === "live") {
            this.refresh();
        } else {
            this.polling.stop();
        }
    }

    onIntervalChange(ev) {
        const seconds = parseInt(ev.target.value, 10);
        if (!REFRESH_INTERVALS.includes(seconds)) {
            return;
        }
        this.state.interval = seconds;
        browser.localStorage.setItem(INTERVAL_STORAGE_KEY, String(seconds));
        this.polling.schedule();
    }

    // ------------------------------------------------------------------
    // Actions on a process or a scheduled action
    // ------------------------------------------------------------------

    onStackClick(process) {
        this.dialog.add(StackDialog, {
            pid: process.pid,
            title: _t("Stack of %(role)s %(pid)s", {
                role: roleLabels()[process.role],
                pid: process.pid,
            }),
        });
    }

    /** A busy scoreboard cell: its process's stack, its thread first (threaded mode). */
    onCellStack(cell) {
        if (cell.tid === null) {
            this.onStackClick({pid: cell.pid, role: cell.role});
            return;
        }
        this.dialog.add(StackDialog, {
            pid: cell.pid,
            focus: cell.tid,
            title: _t("Stack of process %(pid)s, thread %(tid)s first", {
                pid: cell.pid,
                tid: cell.tid,
            }),
        });
    }

    onRecycleClick(process) {
        this.dialog.add(ConfirmationDialog, {
            title: _t("Recycle %(role)s %(pid)s?", {
                role: roleLabels()[process.role],
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

    /** Recycle, say how it went, then refresh to show the new worker. */
    async recycle(pid) {
        const {error} = await recycleWorker(pid);
        if (error && error.status === null) {
            this.notification.add(error.reason, {type: "danger"});
            return;
        }
        if (error) {
            this.notification.add(error.reason, {
                title: _t("Worker %s was not recycled", pid),
                type: "danger",
            });
        } else {
            this.notification.add(
                _t("Worker %s is being recycled; the master starts a new one.", pid),
                {type: "success"}
            );
        }
        this.refresh();
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

    // ------------------------------------------------------------------
    // What the template shows
    // ------------------------------------------------------------------

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

    /** Derived once per render from the snapshot, for the components. */
    get viewModel() {
        const {snapshot} = this.state;
        const summary = summaryOf(snapshot);
        return {
            activity: hasActivity(snapshot),
            // Why part of the snapshot is missing (activity board, PostgreSQL).
            degradedReasons: degradedReasons(snapshot),
            summary,
            scoreboard: scoreboardOf(snapshot),
            processes: processRows(snapshot),
            unattributed: unattributedSessions(snapshot),
            cron: cronOf(snapshot),
            threads: threadRows(snapshot),
        };
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
}

registry
    .category("actions")
    .add("worker_inspector.dashboard", WorkerInspectorDashboard);
