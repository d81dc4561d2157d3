/** @odoo-module **/
// usePolling on Odoo 17.0, whose web client has QUnit and no HOOT
// (static/tests/use_polling.test.js runs on 18.0 and later). The browser's
// timers are replaced by a table the test runs by hand.
import {Component, useState, xml} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {makeTestEnv} from "@web/../tests/helpers/mock_env";
import {
    getFixture,
    mount,
    nextTick,
    patchWithCleanup,
} from "@web/../tests/helpers/utils";

import {usePolling} from "@worker_inspector/polling/use_polling";

function setVisibility(visibilityState) {
    Object.defineProperty(document, "visibilityState", {
        value: visibilityState,
        configurable: true,
    });
    document.dispatchEvent(new Event("visibilitychange"));
}

QUnit.module("worker_inspector polling", {
    afterEach() {
        // Back to the document's own getter.
        delete document.visibilityState;
    },
});

QUnit.test(
    "worker_inspector: usePolling pauses while hidden, resumes at once, stops on unmount",
    async (assert) => {
        const timers = new Map();
        let nextId = 1;
        patchWithCleanup(browser, {
            setTimeout(fn, delay) {
                timers.set(nextId, {fn, delay});
                return nextId++;
            },
            clearTimeout(id) {
                timers.delete(id);
            },
        });
        /** Runs the pending timers (the interval has passed). */
        async function elapse() {
            const due = [...timers.values()];
            timers.clear();
            due.forEach(({fn}) => fn());
            await nextTick();
        }
        let calls = 0;
        class Poller extends Component {
            static template = xml`<span class="o_poller"/>`;
            static props = {};
            setup() {
                usePolling(async () => calls++, {intervalMs: 2000});
            }
        }
        class Parent extends Component {
            static template = xml`<Poller t-if="state.shown"/>`;
            static components = {Poller};
            static props = {};
            setup() {
                this.state = useState({shown: true});
            }
        }
        const env = await makeTestEnv();
        const parent = await mount(Parent, getFixture(), {env});
        await nextTick();
        assert.strictEqual(calls, 1, "a refresh on mount");
        assert.deepEqual(
            [...timers.values()].map((t) => t.delay),
            [2000],
            "then one timer of the interval"
        );
        await elapse();
        assert.strictEqual(calls, 2);
        assert.strictEqual(timers.size, 1);

        setVisibility("hidden");
        assert.strictEqual(timers.size, 0, "hidden: no timer");
        await elapse();
        assert.strictEqual(calls, 2, "hidden: no refresh");

        setVisibility("visible");
        await nextTick();
        assert.strictEqual(calls, 3, "visible again: a refresh at once");
        assert.strictEqual(timers.size, 1);

        parent.state.shown = false;
        await nextTick();
        assert.strictEqual(timers.size, 0, "unmounted: no timer left");
        setVisibility("visible");
        await elapse();
        assert.strictEqual(calls, 3, "unmounted: nothing asked");
    }
);
