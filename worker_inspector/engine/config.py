"""The configuration options the inspector shows, and redaction of secrets."""

import re

# Numbers: worker counts, limits (bytes, seconds, requests), ports, pool sizes.
INT_KEYS = (
    "workers",
    "max_cron_threads",
    "limit_memory_soft",
    "limit_memory_hard",
    "limit_memory_soft_gevent",
    "limit_memory_hard_gevent",
    "limit_time_cpu",
    "limit_time_real",
    "limit_time_real_cron",
    "limit_time_worker_cron",
    "limit_request",
    "http_port",
    "gevent_port",
    "db_maxconn",
    "db_maxconn_gevent",
)
# Shown as they are; anything not listed in CONFIG_KEYS (db_password,
# admin_passwd, smtp_password, ...) is never exposed.
CONFIG_KEYS = INT_KEYS + (
    "http_interface",
    "http_enable",
    "proxy_mode",
    "db_name",
    "dev_mode",
    "server_wide_modules",
    "list_db",
)
REDACTED = "********"
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey")
_SECRET_OPTION_RE = re.compile(r"^(--?[\w-]*(?:{})[\w-]*)(=.*)?$".format("|".join(_SECRET_WORDS)), re.IGNORECASE)
# Odoo's short option for --db_password.
_DB_PASSWORD_SHORT = "-w"
_URI_PASSWORD_RE = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+(@)")


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def effective_config(options):
    """The options that govern workers and limits, from Odoo's config mapping."""
    result = {}
    for key in CONFIG_KEYS:
        try:
            value = options[key]
        except KeyError:
            continue
        if key in INT_KEYS and value not in (None, False):
            value = _as_int(value)
        if isinstance(value, list | tuple):
            value = list(value)
        result[key] = value
    return result


def effective_memory_limits(config, role):
    """(soft, hard) virtual-memory limits Odoo enforces on a role, 0 = none."""
    soft = config.get("limit_memory_soft") or 0
    hard = config.get("limit_memory_hard") or 0
    if role == "gevent":
        soft = config.get("limit_memory_soft_gevent") or soft
        hard = config.get("limit_memory_hard_gevent") or hard
    return int(soft or 0), int(hard or 0)


def redact_cmdline(args):
    """A copy of a command line with every password-like value replaced."""
    redacted = []
    hide_next = False
    for arg in args or []:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
        elif arg.startswith("-"):
            if arg == _DB_PASSWORD_SHORT:
                redacted.append(arg)
                hide_next = True
            elif arg.startswith(_DB_PASSWORD_SHORT) and not arg.startswith("--"):
                redacted.append(_DB_PASSWORD_SHORT + REDACTED)
            elif match := _SECRET_OPTION_RE.match(arg):
                if match.group(2) is None:
                    redacted.append(arg)
                    hide_next = True
                else:
                    redacted.append(match.group(1) + "=" + REDACTED)
            else:
                redacted.append(_redact_uri(arg))
        else:
            redacted.append(_redact_uri(arg))
    return redacted


def _redact_uri(arg):
    if "@" not in arg:
        return arg
    return _URI_PASSWORD_RE.sub(r"\1" + REDACTED + r"\2", arg)
