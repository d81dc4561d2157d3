/** @odoo-module **/
import {_t} from "@web/core/l10n/translation";
import {formatFloat} from "@web/core/utils/numbers";

// Binary units: Odoo's limit_memory_* options are powers of two (2048 MiB...).
const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * "1.25 GiB": three significant digits at most, locale decimal point.
 *
 * @param {number|null|undefined} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
    if (bytes === null || bytes === undefined || Number.isNaN(bytes)) {
        return "";
    }
    let value = bytes;
    let unit = 0;
    while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
        value /= 1024;
        unit++;
    }
    const decimals =
        unit === 0 ? 0 : Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0;
    return `${formatFloat(value, {digits: [0, decimals]})} ${BYTE_UNITS[unit]}`;
}

/**
 * A duration for humans, precise when short: "350 ms", "4.2 s", "3 min 05 s",
 * "2 h 07 min", "3 d 4 h".
 *
 * @param {number|null|undefined} seconds
 * @returns {string}
 */
export function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
        return "";
    }
    const abs = Math.max(seconds, 0);
    if (abs < 1) {
        return _t("%s ms", Math.round(abs * 1000));
    }
    if (abs < 60) {
        return _t("%s s", formatFloat(abs, {digits: [0, abs < 10 ? 1 : 0]}));
    }
    const total = Math.floor(abs);
    const pad = (n) => String(n).padStart(2, "0");
    if (total < 3600) {
        return _t("%(minutes)s min %(seconds)s s", {
            minutes: Math.floor(total / 60),
            seconds: pad(total % 60),
        });
    }
    if (total < 86400) {
        return _t("%(hours)s h %(minutes)s min", {
            hours: Math.floor(total / 3600),
            minutes: pad(Math.floor((total % 3600) / 60)),
        });
    }
    return _t("%(days)s d %(hours)s h", {
        days: Math.floor(total / 86400),
        hours: Math.floor((total % 86400) / 3600),
    });
}

/**
 * @param {number|null|undefined} value a percentage, 0-100 (or more for CPU)
 * @returns {string}
 */
export function formatPercent(value) {
    if (value === null || value === undefined || Number.isNaN(value)) {
        return "";
    }
    return `${formatFloat(value, {digits: [0, value < 10 ? 1 : 0]})} %`;
}
