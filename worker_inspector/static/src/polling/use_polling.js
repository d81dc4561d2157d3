/** @odoo-module **/
import {onMounted, onWillUnmount, useExternalListener, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";

/**
 * Polls with ``refresh`` while the component is mounted and the browser tab
 * is visible: the next call starts the interval after the previous one ended,
 * so a slow server is never asked twice at once; hidden, no timer runs;
 * visible again, it refreshes at once. A refresh asked while one is in flight
 * runs right after it (once, however often it was asked).
 *
 * @param {() => Promise<boolean|void>} refresh resolving to ``false``: no
 *   timer until the next refresh is asked (an error no retry can fix).
 * @param {Object} options
 * @param {number} [options.intervalMs] the interval, fixed
 * @param {() => number} [options.getInterval] the interval (ms), read each time
 * @param {boolean} [options.immediate=true] refresh on mount, else wait an interval
 * @param {() => boolean} [options.isActive] false: no timer, no refresh when
 *   the tab is visible again (another view refreshes itself meanwhile)
 * @returns {{state: {hidden: boolean}, refresh: () => Promise<void>, schedule: () => void, stop: () => void}}
 *   ``refresh`` now (the timer restarts after it); ``schedule`` restarts the
 *   timer (an interval or ``isActive`` changed); ``stop`` the timer.
 */
export function usePolling(
    refresh,
    {intervalMs, getInterval, immediate = true, isActive = () => true} = {}
) {
    const interval = getInterval || (() => intervalMs);
    const state = useState({hidden: document.visibilityState === "hidden"});
    let timer = null;
    let running = null;
    let again = false;
    let alive = true;
    let more = true;

    function stop() {
        if (timer !== null) {
            browser.clearTimeout(timer);
            timer = null;
        }
    }

    function schedule() {
        stop();
        if (!alive || running || !more || state.hidden || !isActive()) {
            return;
        }
        timer = browser.setTimeout(() => {
            timer = null;
            poll();
        }, interval());
    }

    function poll() {
        if (!alive) {
            return Promise.resolve();
        }
        if (running) {
            again = true;
            return running;
        }
        stop();
        running = (async () => {
            try {
                do {
                    again = false;
                    more = (await refresh()) !== false;
                } while (again && alive);
            } finally {
                running = null;
                schedule();
            }
        })();
        return running;
    }

    useExternalListener(document, "visibilitychange", () => {
        state.hidden = document.visibilityState === "hidden";
        if (state.hidden) {
            stop();
        } else if (isActive()) {
            poll();
        }
    });
    onMounted(() => (immediate ? poll() : schedule()));
    onWillUnmount(() => {
        alive = false;
        stop();
    });
    return {state, refresh: poll, schedule, stop};
}
