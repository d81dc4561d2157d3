/** @odoo-module **/
/**
 * The dashboard's calls to the addon's JSON API: plain HTTP routes (not
 * JSON-RPC) authenticated by the browser's session cookie. Every failure
 * comes back as ``{status, reason}``, never as an exception.
 */
import {browser} from "@web/core/browser/browser";
import {_t} from "@web/core/l10n/translation";

export const SNAPSHOT_URL = "/worker_inspector/api/snapshot";
export const RECYCLE_URL = "/worker_inspector/api/recycle";
export const CRONS_URL = "/worker_inspector/api/crons";
export const STACK_URL = "/worker_inspector/api/stack";
export const PROFILE_URL = "/worker_inspector/api/profile";
export const HISTORY_URL = "/worker_inspector/api/history";

/**
 * @typedef {{status: number|null, reason: string}} ApiError
 *   ``status`` null: the server could not be reached.
 */

function unreachable(error) {
    return {
        status: null,
        reason: _t("The server could not be reached (%s).", error.message),
    };
}

/**
 * The JSON body of ``response``, or ``{error}`` built from the API's error
 * envelope ``{"error": {"status", "reason"}}`` or from the HTTP status.
 */
async function readJson(response) {
    let payload = null;
    try {
        payload = await response.json();
    } catch {
        // A proxy error page, a crash page...: not our JSON.
    }
    if (response.ok && payload && !payload.error) {
        return {payload};
    }
    const reason =
        payload?.error?.reason ||
        _t("The server answered HTTP %(status)s %(text)s.", {
            status: response.status,
            text: response.statusText || "",
        });
    return {error: {status: payload?.error?.status ?? response.status, reason}};
}

/**
 * ``fetch`` one of the API's routes: ``{payload}`` or ``{error}``, never a throw.
 */
async function call(url, init) {
    let response;
    try {
        response = await browser.fetch(url, {
            credentials: "same-origin",
            headers: {Accept: "application/json"},
            ...init,
        });
    } catch (error) {
        return {error: unreachable(error)};
    }
    return readJson(response);
}

/**
 * @param {AbortSignal} [signal]
 * @returns {Promise<{snapshot?: Object, error?: ApiError}>}
 */
export async function fetchSnapshot(signal) {
    const {payload, error} = await call(SNAPSHOT_URL, {cache: "no-store", signal});
    return error ? {error} : {snapshot: payload};
}

/**
 * Every scheduled action of this database and its health.
 *
 * @returns {Promise<{crons?: Object[], error?: ApiError}>}
 */
export async function fetchCrons() {
    const {payload, error} = await call(CRONS_URL, {cache: "no-store"});
    return error ? {error} : {crons: payload};
}

/**
 * Graceful recycle (SIGINT) of worker ``pid``, with the page's CSRF token.
 *
 * @returns {Promise<{result?: Object, error?: ApiError}>}
 */
export async function recycleWorker(pid) {
    const {payload, error} = await post(RECYCLE_URL, {pid});
    return error ? {error} : {result: payload};
}

/** POST ``params`` form-encoded, with the page's CSRF token. */
function post(url, params) {
    return call(url, {
        method: "POST",
        // A form-encoded string, typed explicitly (as the browser would type
        // URLSearchParams): the test runners' fetch mocks read it as it is.
        headers: {
            Accept: "application/json",
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
        },
        body: new URLSearchParams({...params, csrf_token: odoo.csrf_token}).toString(),
    });
}

/**
 * Every thread's Python stack of process ``pid``.
 *
 * @returns {Promise<{stack?: Object, error?: ApiError}>}
 */
export async function fetchStack(pid) {
    const {payload, error} = await call(`${STACK_URL}?pid=${encodeURIComponent(pid)}`, {
        cache: "no-store",
    });
    return error ? {error} : {stack: payload};
}

/**
 * A sampling profile of process ``pid`` for ``seconds``, stored as an ir.profile.
 *
 * @returns {Promise<{profile?: {profile_id: number, speedscope_url: string}, error?: ApiError}>}
 */
export async function profileProcess(pid, seconds) {
    const {payload, error} = await post(PROFILE_URL, {pid, seconds});
    return error ? {error} : {profile: payload};
}

export const NODES_URL = "/worker_inspector/api/nodes";
export const WORKERS_URL = "/worker_inspector/api/workers";

/**
 * The nodes publishing into this database; ``node``: that one, with its processes.
 *
 * @param {string} [node]
 * @returns {Promise<{nodes?: Object[], error?: ApiError}>}
 */
export async function fetchNodes(node) {
    const url = node ? `${NODES_URL}?${new URLSearchParams({node})}` : NODES_URL;
    const {payload, error} = await call(url, {cache: "no-store"});
    return error ? {error} : {nodes: payload};
}

/**
 * One HTTP worker more (``delta`` 1) or less (-1) on ``node``, with the page's CSRF token.
 *
 * @returns {Promise<{result?: Object, error?: ApiError}>}
 */
export async function changeWorkers(node, delta) {
    const {payload, error} = await call(WORKERS_URL, {
        method: "POST",
        headers: {
            Accept: "application/json",
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
        },
        body: new URLSearchParams({
            node,
            delta: String(delta),
            csrf_token: odoo.csrf_token,
        }).toString(),
    });
    return error ? {error} : {result: payload};
}

/**
 * Exits and time series since ``since`` (epoch seconds), all kinds.
 *
 * @param {number} since
 * @param {AbortSignal} [signal]
 * @returns {Promise<{history?: Object, error?: ApiError}>}
 */
export async function fetchHistory(since, signal) {
    const url = `${HISTORY_URL}?${new URLSearchParams({since: Math.max(0, Math.floor(since))})}`;
    const {payload, error} = await call(url, {cache: "no-store", signal});
    return error ? {error} : {history: payload};
}

/**
 * The request log's views since ``since`` (epoch seconds): ``kinds`` among
 * requests, routes, profile, and the API's filters (``route``, ``db``,
 * ``min_duration``; null or "" leaves one out).
 *
 * @param {{since: number, kinds: string[], route?: string|null, db?: string|null, min_duration?: number|null}} query
 * @param {AbortSignal} [signal]
 * @returns {Promise<{log?: Object, error?: ApiError}>}
 */
export async function fetchRequestLog(query, signal) {
    const {since, kinds, ...filters} = query;
    const params = new URLSearchParams({
        since: Math.max(0, Math.floor(since)),
        kinds: kinds.join(","),
    });
    for (const [name, value] of Object.entries(filters)) {
        if (value !== null && value !== undefined && value !== "") {
            params.set(name, String(value));
        }
    }
    const {payload, error} = await call(`${HISTORY_URL}?${params}`, {
        cache: "no-store",
        signal,
    });
    return error ? {error} : {log: payload};
}
