/** @odoo-module **/
import {Component} from "@odoo/owl";
import {useService} from "@web/core/utils/hooks";
import {StackDialog} from "./stack_dialog";

/**
 * "Stack" on a history row (an exit, a request) that kept the stack its
 * request had past the slow threshold: opens it in the stack dialog.
 * ``answer``: ``keptStack``/``requestStack``/``exitStack``; nothing shown
 * without one.
 */
export class KeptStackButton extends Component {
    static template = "worker_inspector.KeptStackButton";
    static props = {
        answer: {type: [Object, {value: null}], optional: true},
        title: {type: String, optional: true},
    };

    setup() {
        this.dialog = useService("dialog");
    }

    open() {
        this.dialog.add(StackDialog, {
            answer: this.props.answer,
            ...(this.props.title ? {title: this.props.title} : {}),
        });
    }
}
