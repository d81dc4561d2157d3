/** @odoo-module **/
/**
 * A stack answer of GET /worker_inspector/api/stack as plain text
 * (traceback-like, innermost frame last), for the clipboard.
 */
export function activityLine(activity) {
    if (!activity) {
        return "";
    }
    if (activity.hidden) {
        return "working for another database";
    }
    const parts = [activity.state];
    if (activity.cron_job) {
        parts.push(`cron "${activity.cron_job.name}"`);
    } else if (activity.url) {
        parts.push(activity.url);
    }
    if (activity.db) {
        parts.push(`db ${activity.db}`);
    }
    if (activity.login) {
        parts.push(`user ${activity.login}`);
    }
    if (activity.state === "busy") {
        parts.push(`${activity.elapsed.toFixed(1)} s`);
    }
    return parts.join(", ");
}

export function stackText(answer) {
    const lines = [
        `Process ${answer.pid}, ${new Date(answer.taken_at * 1000).toISOString()}`,
    ];
    for (const thread of answer.threads) {
        lines.push("");
        const activity = activityLine(thread.activity);
        lines.push(
            `Thread ${thread.native_id} "${thread.name}"` +
                (activity ? ` (${activity})` : "")
        );
        for (const session of thread.sql || []) {
            lines.push(`  SQL ${session.state}: ${session.query || ""}`);
        }
        for (const frame of thread.frames) {
            lines.push(
                `  File "${frame.file}", line ${frame.line}, in ${frame.function}`
            );
            if (frame.code) {
                lines.push(`    ${frame.code}`);
            }
        }
    }
    return lines.join("\n") + "\n";
}
