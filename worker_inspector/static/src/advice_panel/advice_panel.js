/** @odoo-module **/
import {Component} from "@odoo/owl";

const LEVEL_CLASS = {
    ok: "text-bg-success",
    info: "text-bg-info",
    warning: "text-bg-warning",
    critical: "text-bg-danger",
};
const LEVEL_ORDER = ["critical", "warning", "info", "ok"];

/**
 * The snapshot's sizing and configuration advice: worst first, each with the
 * numbers it used and the config line to change (README, "Advice").
 */
export class AdvicePanel extends Component {
    static template = "worker_inspector.AdvicePanel";
    static props = {
        // snapshot.advice; absent on a server without the advice
        advice: {type: Array, element: Object, optional: true},
    };
    static defaultProps = {advice: []};

    get items() {
        return [...this.props.advice].sort(
            (a, b) => LEVEL_ORDER.indexOf(a.level) - LEVEL_ORDER.indexOf(b.level)
        );
    }

    levelClass(level) {
        return LEVEL_CLASS[level] || "text-bg-secondary";
    }

    hasFix(item) {
        return item.fix && item.fix !== "nothing to do";
    }
}
