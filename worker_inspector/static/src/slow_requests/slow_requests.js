/** @odoo-module **/
import {Component, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {formatSeconds} from "../format";
import {TOP_REQUESTS} from "../requests_view/requests_model";
import {ShareBar} from "../share_bar/share_bar";
import {KeptStackButton} from "../stack_dialog/kept_stack_button";

/**
 * The slowest requests and scheduled-action runs of the window, each with
 * its split CPU / SQL / other, what it was (URL, RPC, cron job), database,
 * user, status and start (in the web client's time zone), and the stack it
 * kept past the slow threshold.
 */
export class SlowRequests extends Component {
    static template = "worker_inspector.SlowRequests";
    static components = {KeptStackButton, ShareBar};
    static props = {
        // requests_model.requestRows of the API's requests
        rows: {type: Array, element: Object},
    };

    setup() {
        this.state = useState({showAll: false});
        this.top = TOP_REQUESTS;
    }

    get shown() {
        return this.state.showAll
            ? this.props.rows
            : this.props.rows.slice(0, TOP_REQUESTS);
    }

    get toggleLabel() {
        return this.state.showAll
            ? _t("Show the slowest %s", TOP_REQUESTS)
            : _t("Show all %s requests", this.props.rows.length);
    }

    formatSeconds(value) {
        return formatSeconds(value);
    }

    formatTime(epoch) {
        return luxon.DateTime.fromSeconds(epoch).toLocaleString(
            luxon.DateTime.DATETIME_MED_WITH_SECONDS
        );
    }

    kindLabel(kind) {
        return kind === "cron" ? _t("cron") : _t("http");
    }

    splitTitle(row) {
        return _t("CPU %(cpu)s, SQL %(sql)s (%(count)s queries), other %(other)s", {
            cpu: formatSeconds(row.split.cpu),
            sql: formatSeconds(row.split.sql),
            count: row.sql_count,
            other: formatSeconds(row.split.other),
        });
    }

    stackTitle(row) {
        return _t("Stack of %(target)s (process %(pid)s), past the slow threshold", {
            target: row.target,
            pid: row.pid,
        });
    }
}
