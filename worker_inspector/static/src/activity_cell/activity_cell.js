/** @odoo-module **/
import {Component} from "@odoo/owl";

/** What a process or thread is doing: the state badge, for how long, the URL or job. */
export class ActivityCell extends Component {
    static template = "worker_inspector.ActivityCell";
    // describeActivity()'s result; null: not reporting.
    static props = {activity: [Object, {value: null}]};
}
