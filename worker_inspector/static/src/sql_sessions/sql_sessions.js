/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatSeconds} from "../format";

/** PostgreSQL sessions doing something, and how many idle ones were left out. */
export class SqlSessions extends Component {
    static template = "worker_inspector.SqlSessions";
    static props = {
        sessions: {type: Array, element: Object},
        idleCount: {type: Number, optional: true},
    };
    static defaultProps = {idleCount: 0};

    formatSeconds(seconds) {
        return formatSeconds(seconds);
    }
}
