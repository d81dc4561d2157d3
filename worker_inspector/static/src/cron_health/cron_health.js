/** @odoo-module **/
import {Component, onWillStart, useState} from "@odoo/owl";
import {fetchCrons} from "../api";
import {formatSeconds} from "../format";
import {usePolling} from "../polling/use_polling";
import {formatTimestamp} from "../view_model";

const REFRESH_MS = 5000;

/**
 * Every scheduled action of this database: next call, last run, who runs it
 * now and since when, overdue while cron is on, failures (18.0+), and the
 * dangers: a "Run Manually" overlapping a cron worker's run, another Odoo
 * server running this database's jobs (README, "Scheduled actions").
 */
export class CronHealth extends Component {
    static template = "worker_inspector.CronHealth";
    static props = {
        onOpenCron: {type: Function, optional: true},
    };

    setup() {
        this.state = useState({crons: null, error: null});
        onWillStart(() => this.load());
        // Loaded before the first render; then every few seconds while the browser tab is visible.
        usePolling(() => this.load(), {intervalMs: REFRESH_MS, immediate: false});
    }

    async load() {
        const {crons, error} = await fetchCrons();
        this.state.error = error || null;
        if (crons) {
            this.state.crons = crons;
        }
    }

    get rows() {
        // Those needing attention first, then by name.
        return [...(this.state.crons || [])].sort(
            (a, b) =>
                (b.warnings.length > 0) - (a.warnings.length > 0) ||
                (b.running.length > 0) - (a.running.length > 0) ||
                String(a.name).localeCompare(String(b.name))
        );
    }

    interval(cron) {
        return `${cron.interval.number} ${cron.interval.type}`;
    }

    runnerLabel(runner) {
        const where = runner.tid ? `${runner.pid}/${runner.tid}` : `${runner.pid}`;
        return `${runner.manual ? "Run Manually" : "cron"} on ${where}`;
    }

    elapsed(since) {
        return formatSeconds(Date.now() / 1000 - since);
    }

    formatSeconds(seconds) {
        return formatSeconds(seconds);
    }

    formatTimestamp(seconds) {
        return seconds ? formatTimestamp(seconds) : "";
    }
}
