/** @odoo-module **/
import {Component} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {formatFloat} from "@web/core/utils/numbers";
import {ShareBar} from "../share_bar/share_bar";

/**
 * The load profile of the window: the verdict in words (is the server
 * CPU-bound or I/O-bound, and what follows), where request time went as a
 * stacked bar CPU / SQL / other, and the cores busy with request CPU.
 */
export class LoadProfile extends Component {
    static template = "worker_inspector.LoadProfile";
    static components = {ShareBar};
    static props = {
        // requests_model.profileView of the API's profile
        profile: {
            type: Object,
            shape: {
                verdict: String,
                label: String,
                badge: String,
                explanation: String,
                segments: Array,
                idle: Boolean,
            },
        },
        // cores busy with request CPU on average (null: unknown)
        busyCores: {type: [Number, {value: null}], optional: true},
        // the machine's CPUs (the snapshot's host.cpu_count)
        cores: {type: [Number, {value: null}], optional: true},
    };

    get busyText() {
        const {busyCores, cores} = this.props;
        if (busyCores === null || busyCores === undefined) {
            return "";
        }
        const busy = formatFloat(busyCores, {digits: [0, 2]});
        return cores
            ? _t("Request CPU: %(busy)s of %(cores)s cores busy on average", {
                  busy,
                  cores,
              })
            : _t("Request CPU: %s cores busy on average", busy);
    }
}
