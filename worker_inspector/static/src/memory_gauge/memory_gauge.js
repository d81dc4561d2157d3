/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatBytes} from "../format";
import {GAUGE_BAR_CLASS, gaugeTitle, limitsText, memoryGauge} from "../view_model";

/**
 * Virtual memory (what Odoo checks) against the soft and hard limits Odoo
 * applies to the process: a bar scaled to the higher limit, a marker at the
 * soft one.
 */
export class MemoryGauge extends Component {
    static template = "worker_inspector.MemoryGauge";
    static props = {
        vms: Number,
        // 0: no limit
        soft: Number,
        hard: Number,
    };

    get gaugeBar() {
        return memoryGauge(this.props.vms, this.props.soft, this.props.hard);
    }

    get barClass() {
        return GAUGE_BAR_CLASS[this.gaugeBar.level];
    }

    get title() {
        return gaugeTitle(this.props.vms, this.props.soft, this.props.hard);
    }

    get limits() {
        return limitsText(this.props.soft, this.props.hard);
    }

    get vmsText() {
        return formatBytes(this.props.vms);
    }
}
