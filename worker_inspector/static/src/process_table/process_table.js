/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatBytes, formatPercent} from "../format";
import {ActivityCell} from "../activity_cell/activity_cell";
import {MemoryGauge} from "../memory_gauge/memory_gauge";
import {SqlSessions} from "../sql_sessions/sql_sessions";

/**
 * One row per process of the server, busy ones first; the process that
 * answered is marked. On a prefork server its HTTP and cron workers have a
 * Recycle button; every process that reports its activity, a Stack button.
 * On a laptop-width window (below 992 px) the secondary
 * columns (start, CPU, threads) hide and the activity column narrows, so that
 * memory and Recycle stay visible without scrolling.
 */
export class ProcessTable extends Component {
    static template = "worker_inspector.ProcessTable";
    static components = {ActivityCell, MemoryGauge, SqlSessions};
    static props = {
        // view_model.processRows()
        rows: {type: Array, element: Object},
        showActivity: Boolean,
        prefork: Boolean,
        onRecycle: Function,
        onStack: Function,
    };

    formatBytes(bytes) {
        return formatBytes(bytes);
    }

    formatPercent(value) {
        return formatPercent(value);
    }
}
