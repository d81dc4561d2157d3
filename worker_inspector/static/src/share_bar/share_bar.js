/** @odoo-module **/
import {Component} from "@odoo/owl";
import {formatPercent} from "../format";

/**
 * A stacked bar of where time went: CPU / SQL / other, each segment as wide
 * as its share (``segments`` from requests_model.shareSegments).
 */
export class ShareBar extends Component {
    static template = "worker_inspector.ShareBar";
    static props = {
        segments: {
            type: Array,
            element: {
                type: Object,
                shape: {
                    part: String,
                    label: String,
                    color: String,
                    share: Number,
                    percent: Number,
                },
            },
        },
        // a thin bar in a table cell, without the legend
        compact: {type: Boolean, optional: true},
    };

    formatPercent(value) {
        return formatPercent(value);
    }

    title(segment) {
        return `${segment.label} ${formatPercent(segment.percent)}`;
    }
}
