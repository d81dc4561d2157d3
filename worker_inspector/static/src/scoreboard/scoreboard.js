/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatPercent, formatSeconds} from "../format";

/**
 * Apache-style scoreboard: utilization, one cell per HTTP and cron worker
 * (prefork: processes; threaded: request and cron threads), the legend and
 * the longest running request or job. A busy cell offers "Stack"
 * (``onStack(cell)``): the stack of its process, its thread first.
 */
export class Scoreboard extends Component {
    static template = "worker_inspector.Scoreboard";
    static props = {
        // view_model.scoreboardOf()
        board: {
            type: Object,
            shape: {
                cells: {type: Array, element: Object},
                counts: Object,
                utilization: [Number, {value: null}],
                httpBusy: [Number, {value: null}],
                httpCapacity: [Number, {value: null}],
                basis: [String, {value: null}],
                longestBusy: [Number, {value: null}],
            },
        },
        onStack: {type: Function, optional: true},
    };

    formatPercent(value) {
        return formatPercent(value);
    }

    formatSeconds(seconds) {
        return formatSeconds(seconds);
    }
}
