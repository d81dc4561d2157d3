/** @odoo-module **/
import {describe, expect, test} from "@odoo/hoot";

import {adviceStatus, commandStatus} from "@worker_inspector/nodes_view/nodes_view";

describe.current.tags("headless");

const LEVELS = {
    worst: "critical",
    counts: {ok: 6, info: 1, warning: 1, critical: 1},
    alerts: ["cron_threads", "db_maxconn_vs_postgres"],
};

test("a node's advice badge: worst level, counts, alert ids", () => {
    expect(adviceStatus({summary: {advice_levels: LEVELS}})).toEqual({
        level: "critical",
        label: "1 critical, 1 warning, 1 info",
        className: "text-bg-danger",
        title: "cron_threads, db_maxconn_vs_postgres",
    });
    const calm = {
        worst: "ok",
        counts: {ok: 9, info: 0, warning: 0, critical: 0},
        alerts: [],
    };
    expect(adviceStatus({summary: {advice_levels: calm}}).label).toBe("ok");
    // A node that published no advice (an older addon): no badge.
    expect(adviceStatus({summary: {}})).toBe(null);
});

test("an expired command is the node's last command, with its reason", () => {
    const last = {
        action: "worker_add",
        state: "expired",
        result: {
            reason: "Node web1:12 did not carry the command out within 30 s",
            waited: 31,
        },
    };
    expect(commandStatus({pending: [], last_command: last})).toEqual({
        label: "worker_add expired: Node web1:12 did not carry the command out within 30 s",
        state: "expired",
    });
    expect(
        commandStatus({pending: [{action: "worker_add"}], last_command: last})
    ).toEqual({
        label: "worker_add",
        state: "pending",
    });
});
