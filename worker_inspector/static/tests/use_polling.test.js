/** @odoo-module **/
import {describe, expect, test} from "@odoo/hoot";
import {advanceTime, animationFrame} from "@odoo/hoot-mock";
import {Component, useState, xml} from "@odoo/owl";
import {mountWithCleanup, patchWithCleanup} from "@web/../tests/web_test_helpers";

import {usePolling} from "@worker_inspector/polling/use_polling";

describe.current.tags("headless");

function setVisibility(visibilityState) {
    patchWithCleanup(document, {visibilityState});
    document.dispatchEvent(new Event("visibilitychange"));
}

/**
 * Mounts a component polling every second with ``refresh`` under a parent
 * that unmounts it when ``parent.state.shown`` turns false.
 */
async function mountPoller(refresh, options = {}) {
    let poller = null;
    class Poller extends Component {
        static template = xml`<span class="o_poller" t-att-data-hidden="polling.state.hidden ? 'yes' : 'no'"/>`;
        static props = {};
        setup() {
            this.polling = usePolling(refresh, {intervalMs: 1000, ...options});
            poller = this;
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
    const parent = await mountWithCleanup(Parent);
    return {parent, poller: () => poller};
}

test("usePolling: refreshes at once, then an interval after each refresh ended", async () => {
    let calls = 0;
    await mountPoller(async () => calls++);
    await animationFrame();
    expect(calls).toBe(1);
    await advanceTime(500);
    expect(calls).toBe(1);
    for (const expected of [2, 3, 4]) {
        await advanceTime(1000);
        expect(calls).toBe(expected);
    }
});

test("usePolling: immediate false waits an interval first", async () => {
    let calls = 0;
    await mountPoller(async () => calls++, {immediate: false});
    await animationFrame();
    expect(calls).toBe(0);
    await advanceTime(1000);
    expect(calls).toBe(1);
});

test("usePolling: hidden, no refresh; visible again, a refresh at once", async () => {
    let calls = 0;
    await mountPoller(async () => calls++);
    await animationFrame();
    expect(calls).toBe(1);
    setVisibility("hidden");
    await animationFrame();
    expect(".o_poller").toHaveAttribute("data-hidden", "yes");
    await advanceTime(60_000);
    expect(calls).toBe(1);
    setVisibility("visible");
    await animationFrame();
    expect(".o_poller").toHaveAttribute("data-hidden", "no");
    expect(calls).toBe(2);
    await advanceTime(1000);
    expect(calls).toBe(3);
});

test("usePolling: unmounted, nothing is asked any more", async () => {
    let calls = 0;
    const {parent} = await mountPoller(async () => calls++);
    await animationFrame();
    expect(calls).toBe(1);
    parent.state.shown = false;
    await animationFrame();
    expect(".o_poller").toHaveCount(0);
    setVisibility("visible");
    await advanceTime(60_000);
    expect(calls).toBe(1);
});

test("usePolling: never two refreshes in flight; one asked meanwhile runs after", async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    let release = null;
    const {poller} = await mountPoller(() => {
        calls++;
        inFlight++;
        most = Math.max(most, inFlight);
        return new Promise((resolve) => {
            release = () => {
                inFlight--;
                resolve();
            };
        });
    });
    await animationFrame();
    expect(calls).toBe(1);
    // Asked three times while the first is in flight: one more, after it.
    poller().polling.refresh();
    poller().polling.refresh();
    setVisibility("visible");
    await advanceTime(5000);
    expect(calls).toBe(1);
    release();
    await animationFrame();
    expect(calls).toBe(2);
    release();
    await animationFrame();
    expect(calls).toBe(2);
    expect(most).toBe(1);
    // The timer starts when the last one ended.
    await advanceTime(1000);
    expect(calls).toBe(3);
});

test("usePolling: a refresh answering false stops the timer until asked again", async () => {
    let calls = 0;
    let answer = false;
    const {poller} = await mountPoller(async () => {
        calls++;
        return answer;
    });
    await animationFrame();
    expect(calls).toBe(1);
    await advanceTime(10_000);
    expect(calls).toBe(1);
    answer = undefined;
    poller().polling.refresh();
    await animationFrame();
    expect(calls).toBe(2);
    await advanceTime(1000);
    expect(calls).toBe(3);
});
