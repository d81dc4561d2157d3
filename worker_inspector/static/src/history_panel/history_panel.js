/** @odoo-module **/
import {Component, onWillStart, onWillUnmount, useRef, useState} from "@odoo/owl";
import {loadBundle} from "@web/core/assets";
import {_t} from "@web/core/l10n/translation";
import {fetchHistory} from "../api";
import {formatBytes, formatSeconds} from "../format";
import {usePolling} from "../polling/use_polling";
import {KeptStackButton} from "../stack_dialog/kept_stack_button";
import {roleLabels} from "../view_model";
import {EXIT_REASONS, exitRows, loadSeries, memorySeries} from "./history_model";

export const WINDOWS = [
    {hours: 1, label: _t("Last hour")},
    {hours: 6, label: _t("Last 6 hours")},
    {hours: 24, label: _t("Last 24 hours")},
];
export const HISTORY_REFRESH_SECONDS = 30;

/**
 * The History view: memory of each worker against its limits, utilization
 * and accept backlog over time (Chart.js, loaded as Odoo's graph view loads
 * it on 17.0, 18.0 and 19.0), and the table of worker exits with their cause.
 * Times are shown in the zone Odoo's web client uses for every date (luxon's
 * default zone).
 */
export class HistoryPanel extends Component {
    static template = "worker_inspector.HistoryPanel";
    static components = {KeptStackButton};
    static props = {
        // the snapshot's config: limit_memory_soft/hard drawn as lines
        config: {type: Object, optional: true},
    };

    setup() {
        this.state = useState({hours: 1, reason: "", history: null, error: null});
        this.reasons = EXIT_REASONS;
        this.windows = WINDOWS;
        this.memoryCanvas = useRef("memory");
        this.loadCanvas = useRef("load");
        this.charts = [];
        this.alive = true;
        onWillStart(() => loadBundle("web.chartjs_lib"));
        // Every 30 s while the browser tab is visible.
        this.polling = usePolling(() => this.load(), {
            intervalMs: HISTORY_REFRESH_SECONDS * 1000,
        });
        onWillUnmount(() => {
            this.alive = false;
            this.destroyCharts();
        });
    }

    get exits() {
        return exitRows(this.state.history, this.state.reason);
    }

    formatBytes(value) {
        return formatBytes(value);
    }

    stackTitle(exit) {
        return _t("Stack of %(role)s %(pid)s before it ended (%(reason)s)", {
            role: roleLabels()[exit.role] || exit.role,
            pid: exit.pid,
            reason: exit.reason,
        });
    }

    formatSeconds(value) {
        return formatSeconds(value);
    }

    formatTime(epoch) {
        return luxon.DateTime.fromSeconds(epoch).toLocaleString(
            luxon.DateTime.DATETIME_MED_WITH_SECONDS
        );
    }

    /** Asks again now (another window); the timer restarts after it. */
    refresh() {
        return this.polling.refresh();
    }

    async load() {
        const since = Date.now() / 1000 - this.state.hours * 3600;
        const {history, error} = await fetchHistory(since);
        if (!this.alive) {
            return;
        }
        if (error) {
            this.state.error = error;
        } else {
            this.state.history = history;
            this.state.error = null;
            this.draw();
        }
    }

    onWindowChange(ev) {
        this.state.hours = parseInt(ev.target.value, 10);
        this.refresh();
    }

    onReasonChange(ev) {
        this.state.reason = ev.target.value;
    }

    destroyCharts() {
        for (const chart of this.charts) {
            chart.destroy();
        }
        this.charts = [];
    }

    /** A line chart over time on ``canvas``: ``scales`` beside the time axis. */
    lineChart(canvas, datasets, scales, plugins = {}) {
        return new Chart(canvas, {
            type: "line",
            data: {datasets},
            options: {
                animation: false,
                parsing: false,
                maintainAspectRatio: false,
                scales: {
                    x: {
                        type: "time",
                        adapters: {date: {zone: luxon.Settings.defaultZone.name}},
                        time: {tooltipFormat: "DD TT"},
                    },
                    ...scales,
                },
                plugins,
            },
        });
    }

    draw() {
        this.destroyCharts();
        const {history} = this.state;
        if (!history || !this.memoryCanvas.el || !this.loadCanvas.el) {
            return;
        }
        const bytes = (value) => formatBytes(value);
        this.charts.push(
            this.lineChart(
                this.memoryCanvas.el,
                memorySeries(history, this.props.config || {}),
                {y: {ticks: {callback: bytes}}},
                {
                    tooltip: {
                        callbacks: {
                            label: (item) =>
                                `${item.dataset.label}: ${bytes(item.parsed.y)}`,
                        },
                    },
                }
            ),
            this.lineChart(this.loadCanvas.el, loadSeries(history), {
                utilization: {
                    position: "left",
                    min: 0,
                    max: 100,
                    title: {display: true, text: "%"},
                },
                backlog: {position: "right", min: 0, grid: {drawOnChartArea: false}},
            })
        );
    }
}
