/** @odoo-module **/
import {Component, onWillUnmount, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {fetchRequestLog} from "../api";
import {formatSeconds} from "../format";
import {LoadProfile} from "../load_profile/load_profile";
import {usePolling} from "../polling/use_polling";
import {RoutesTable} from "../routes_table/routes_table";
import {SlowRequests} from "../slow_requests/slow_requests";
import {
    DEFAULT_WINDOW_HOURS,
    MIN_DURATIONS,
    REQUEST_WINDOWS,
    busyCores,
    profileView,
    requestQueries,
    requestRows,
    routeRows,
} from "./requests_model";

export const REQUESTS_REFRESH_SECONDS = 10;

/**
 * The Requests view: the load profile of the window with its verdict, the
 * routes table, and the slowest requests; a route row shows that route's
 * requests (the API's ``route`` filter), a chip clears it. Refreshes every
 * few seconds while the browser tab is visible (usePolling).
 */
export class RequestsView extends Component {
    static template = "worker_inspector.RequestsView";
    static components = {LoadProfile, RoutesTable, SlowRequests};
    static props = {
        // the machine's CPUs (the snapshot's host.cpu_count)
        cores: {type: [Number, {value: null}], optional: true},
    };

    setup() {
        this.state = useState({
            hours: DEFAULT_WINDOW_HOURS,
            route: null,
            minDuration: null,
            // the answer shown and the filters it was asked with
            log: null,
            shown: null,
            error: null,
            loading: false,
        });
        this.windows = REQUEST_WINDOWS;
        this.minDurations = MIN_DURATIONS;
        this.abortController = null;
        this.polling = usePolling(() => this.load(), {
            intervalMs: REQUESTS_REFRESH_SECONDS * 1000,
        });
        onWillUnmount(() => this.abortController?.abort());
    }

    // ------------------------------------------------------------------
    // Polling
    // ------------------------------------------------------------------

    /**
     * Asks again now with the current filters: the answer in flight, asked
     * with the previous ones, is dropped.
     */
    refresh() {
        this.abortController?.abort();
        return this.polling.refresh();
    }

    async load() {
        const controller = new AbortController();
        this.abortController = controller;
        const {hours, route, minDuration} = this.state;
        const since = Date.now() / 1000 - hours * 3600;
        this.state.loading = true;
        const answers = await Promise.all(
            requestQueries({since, route, minDuration}).map((query) =>
                fetchRequestLog(query, controller.signal)
            )
        );
        if (controller.signal.aborted) {
            // Superseded by newer filters, or unmounted.
            return;
        }
        this.state.loading = false;
        const failed = answers.find((answer) => answer.error);
        if (failed) {
            this.state.error = failed.error;
            if ([401, 403].includes(failed.error.status)) {
                // Never keep showing data the user may no longer see.
                this.state.log = null;
            }
        } else {
            this.state.log = Object.assign({since}, ...answers.map((a) => a.log));
            this.state.shown = {hours, route, minDuration};
            this.state.error = null;
        }
    }

    // ------------------------------------------------------------------
    // Filters
    // ------------------------------------------------------------------

    onWindowChange(ev) {
        this.state.hours = parseFloat(ev.target.value);
        this.refresh();
    }

    onMinDurationChange(ev) {
        const value = ev.target.value;
        this.state.minDuration = value === "" ? null : parseFloat(value);
        this.refresh();
    }

    selectRoute(key) {
        this.state.route = key;
        this.refresh();
    }

    clearRoute() {
        this.state.route = null;
        this.refresh();
    }

    // ------------------------------------------------------------------
    // What the template shows
    // ------------------------------------------------------------------

    /** @returns {"loading"|"error"|"ready"} */
    get status() {
        if (this.state.log) {
            return "ready";
        }
        return this.state.error ? "error" : "loading";
    }

    get viewModel() {
        const {log} = this.state;
        const routes = routeRows(log.routes);
        return {
            profile: profileView(log.profile),
            routes,
            busyCores: busyCores(log.routes, log.taken_at - log.since),
            requests: requestRows(log.requests),
        };
    }

    minDurationLabel(seconds) {
        return seconds === null
            ? _t("Any duration")
            : _t("At least %s", formatSeconds(seconds));
    }
}
