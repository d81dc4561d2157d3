/** @odoo-module **/
import {Component} from "@odoo/owl";
import {session} from "@web/session";
import {formatSeconds} from "../format";
import {formatTimestamp} from "../view_model";

/**
 * Who runs scheduled actions (cron workers or threads) and what they run;
 * with cron off, the scheduled actions of this database that are overdue.
 */
export class CronPanel extends Component {
    static template = "worker_inspector.CronPanel";
    static props = {
        // view_model.cronOf(); null: the API reports no cron section
        cron: [Object, {value: null}],
        onOpenCron: Function,
    };

    /** Scheduled actions of the database this page is logged in can be opened. */
    canOpenCron(job) {
        return Boolean(job?.id) && (!job.db || job.db === session.db);
    }

    formatSeconds(seconds) {
        return formatSeconds(seconds);
    }

    formatTimestamp(seconds) {
        return formatTimestamp(seconds);
    }
}
