/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatBytes} from "../format";

/** Mode, HTTP, cron and gevent against the configuration, memory against the host's. */
export class SummaryCards extends Component {
    static template = "worker_inspector.SummaryCards";
    // view_model.summaryOf()
    static props = {summary: Object};

    formatBytes(bytes) {
        return formatBytes(bytes);
    }
}
