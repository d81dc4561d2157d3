/** @odoo-module **/
import {Component, onWillUnmount, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";
import {changeWorkers, fetchNodes} from "../api";
import {formatBytes, formatPercent, formatSeconds} from "../format";
import {usePolling} from "../polling/use_polling";

export const NODES_REFRESH_SECONDS = 5;

/**
 * A control's state for a node row: the pending commands, else the last result.
 *
 * @param {Object} node a row of GET /worker_inspector/api/nodes
 * @returns {{label: string, state: string}|null}
 */
export function commandStatus(node) {
    if (node.pending && node.pending.length) {
        return {
            label: node.pending.map((entry) => entry.action).join(", "),
            state: "pending",
        };
    }
    const last = node.last_command;
    if (!last) {
        return null;
    }
    const reason = last.result && last.result.reason;
    const label = last.state === "expired" ? `${last.action} expired` : last.action;
    return {
        label: reason ? `${label}: ${reason}` : label,
        state: last.state,
    };
}

const ADVICE_CLASS = {
    ok: "text-bg-success",
    info: "text-bg-info",
    warning: "text-bg-warning",
    critical: "text-bg-danger",
};

/**
 * A node's advice as its heartbeat published it (summary.advice_levels): the
 * worst level with the count of items at that level, the warning and critical
 * ids as the title.
 *
 * @param {Object} node a row of GET /worker_inspector/api/nodes
 * @returns {{label: string, className: string, title: string, level: string}|null}
 */
export function adviceStatus(node) {
    const levels = node.summary && node.summary.advice_levels;
    if (!levels || !levels.counts) {
        return null;
    }
    const worst = levels.worst;
    const counts = ["critical", "warning", "info"]
        .filter((level) => levels.counts[level])
        .map((level) => `${levels.counts[level]} ${level}`);
    return {
        level: worst,
        label: counts.length ? counts.join(", ") : "ok",
        className: ADVICE_CLASS[worst] || "text-bg-secondary",
        title: (levels.alerts || []).join(", "),
    };
}

/**
 * The Nodes view: every Odoo server publishing heartbeats into this database,
 * with HTTP worker controls; a row opens the node's last published processes.
 */
export class NodesView extends Component {
    static template = "worker_inspector.NodesView";
    static props = {};

    setup() {
        this.state = useState({nodes: null, error: null, open: null, processes: null});
        this.notification = useService("notification");
        this.formatBytes = formatBytes;
        this.formatPercent = formatPercent;
        this.formatSeconds = formatSeconds;
        this.commandStatus = commandStatus;
        this.adviceStatus = adviceStatus;
        this.alive = true;
        onWillUnmount(() => (this.alive = false));
        // Every few seconds while the browser tab is visible, never two at once.
        this.polling = usePolling(() => this.load(), {
            intervalMs: NODES_REFRESH_SECONDS * 1000,
        });
    }

    refresh() {
        return this.polling.refresh();
    }

    async load() {
        const {nodes, error} = await fetchNodes();
        if (!this.alive) {
            return;
        }
        this.state.error = error ? error.reason : null;
        if (nodes) {
            this.state.nodes = nodes;
        }
        if (this.state.open) {
            await this.loadProcesses(this.state.open);
        }
    }

    async loadProcesses(node) {
        const {nodes} = await fetchNodes(node);
        if (this.alive && nodes && nodes.length && this.state.open === node) {
            this.state.processes = nodes[0].processes;
        }
    }

    async onRowClick(node) {
        if (this.state.open === node.node) {
            this.state.open = null;
            this.state.processes = null;
            return;
        }
        this.state.open = node.node;
        this.state.processes = null;
        await this.loadProcesses(node.node);
    }

    async changeWorkers(node, delta) {
        const {result, error} = await changeWorkers(node.node, delta);
        if (error) {
            this.notification.add(error.reason, {
                title: _t("HTTP workers of %s unchanged", node.node),
                type: "danger",
            });
        } else {
            this.notification.add(
                result.state === "pending"
                    ? _t("Sent to %s: carried out with its next heartbeat.", node.node)
                    : _t("Done on %s.", node.node),
                {type: "success"}
            );
        }
        this.refresh();
    }
}
