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

/**
 * A stack kept with a history record (a request's ``stack``, an exit's
 * ``doing.stack``) in the shape of a stack answer: one thread, the request's.
 */
export function keptStack({pid, frames, activity = null, takenAt = null}) {
    return {
        pid,
        taken_at: takenAt,
        kept: true,
        threads: [{native_id: pid, name: activity?.url || "", activity, frames}],
    };
}

/** The kept stack of a history request record, or null. */
export function requestStack(record) {
    if (!record?.stack) {
        return null;
    }
    return keptStack({
        pid: record.pid,
        frames: record.stack,
        takenAt: record.started_at,
        activity: {
            state: "busy",
            url: record.url,
            cron_job: record.cron_job,
            db: record.db,
            login: record.login,
            elapsed: record.duration,
        },
    });
}

/** The kept stack of what an exited worker was doing, or null. */
export function exitStack(exit) {
    const doing = exit?.doing;
    if (!doing?.stack) {
        return null;
    }
    return keptStack({
        pid: exit.pid,
        frames: doing.stack,
        takenAt: exit.ended_at,
        activity: {
            state: "busy",
            url: doing.url,
            cron_job: doing.cron_job,
            elapsed: doing.elapsed,
        },
    });
}

export function stackText(answer) {
    const when = answer.taken_at
        ? `, ${new Date(answer.taken_at * 1000).toISOString()}`
        : "";
    const lines = [`Process ${answer.pid}${when}`];
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
