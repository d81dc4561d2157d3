/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatSeconds} from "../format";
import {SqlSessions} from "../sql_sessions/sql_sessions";

/** The threads of the process that answered (no process sees another's threads). */
export class ThreadTable extends Component {
    static template = "worker_inspector.ThreadTable";
    static components = {SqlSessions};
    static props = {
        // view_model.threadRows()
        rows: {type: Array, element: Object},
        servedBy: Number,
        showActivity: Boolean,
    };

    formatSeconds(seconds) {
        return formatSeconds(seconds);
    }
}
