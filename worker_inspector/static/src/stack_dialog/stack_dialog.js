/** @odoo-module **/
import {Component, onWillStart, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {Dialog} from "@web/core/dialog/dialog";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";
import {fetchStack, profileProcess} from "../api";
import {activityLine, stackText} from "./stack_text";

export const PROFILE_SECONDS = 10;

/**
 * The Python stack of every thread of one process (README: Stacks), each
 * thread with what it is doing; frames of Odoo and of addons told apart.
 * "Copy as text" puts the traceback-like text on the clipboard; "Profile
 * 10 s" samples the process into an ir.profile and opens it in speedscope.
 * Given an ``answer`` (``keptStack``: the stack a slow request left in the
 * history), it shows that instead of asking the process; ``focus``: the
 * native id of the thread to show first (a scoreboard cell's).
 */
export class StackDialog extends Component {
    static template = "worker_inspector.StackDialog";
    static components = {Dialog};
    static props = {
        pid: {type: Number, optional: true},
        answer: {type: Object, optional: true},
        focus: {type: Number, optional: true},
        title: {type: String, optional: true},
        close: Function,
    };

    setup() {
        this.notification = useService("notification");
        this.state = useState({
            answer: null,
            error: null,
            loading: true,
            profiling: false,
        });
        onWillStart(() => this.load());
    }

    get pid() {
        return this.props.answer ? this.props.answer.pid : this.props.pid;
    }

    get threads() {
        const threads = this.state.answer?.threads || [];
        const focus = this.props.focus;
        return focus === undefined
            ? threads
            : [...threads].sort(
                  (a, b) => (b.native_id === focus) - (a.native_id === focus)
              );
    }

    async load() {
        if (this.props.answer) {
            this.state.answer = this.props.answer;
            this.state.loading = false;
            return;
        }
        this.state.loading = true;
        const {stack, error} = await fetchStack(this.props.pid);
        this.state.answer = stack || null;
        this.state.error = error ? error.reason : null;
        this.state.loading = false;
    }

    activityLine(thread) {
        return activityLine(thread.activity);
    }

    isBusy(thread) {
        return thread.activity?.state === "busy";
    }

    async copy() {
        await browser.navigator.clipboard.writeText(stackText(this.state.answer));
        this.notification.add(_t("Stack copied."), {type: "success"});
    }

    async profile() {
        this.state.profiling = true;
        const {profile, error} = await profileProcess(this.props.pid, PROFILE_SECONDS);
        this.state.profiling = false;
        if (error) {
            this.notification.add(error.reason, {
                title: _t("No profile of process %s", this.props.pid),
                type: "danger",
            });
        } else {
            browser.open(profile.speedscope_url, "_blank");
        }
    }
}
