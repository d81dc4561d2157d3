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
# Odoo options whose value is a secret (optparse ``dest``).
SECRET_DESTS = frozenset({"db_password", "smtp_password", "admin_passwd"})
# Unknown options that look secret are hidden too.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey")
_SECRET_OPTION_RE = re.compile(r"^--?[\w-]*(?:{})".format("|".join(_SECRET_WORDS)), re.IGNORECASE)
# A password in a URI (also with an empty user, postgresql://:pw@host) or a
# password=... parameter of a URI or a libpq connection string.
_URI_PASSWORD_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(@)", re.IGNORECASE)
_PASSWORD_PARAM_RE = re.compile(r"(\bpassword=)[^&\s]+", re.IGNORECASE)


class OptionTable:
    """How Odoo's parser (optparse) reads options: ``long`` maps ``--name`` and
    ``short`` maps a letter to ``(dest, takes_value)``."""

    def __init__(self, long, short):
        self.long = dict(long)
        self.short = dict(short)

    @classmethod
    def from_parser(cls, parser):
        """The table of a live ``optparse.OptionParser`` (``odoo.tools.config.parser``)."""
        return cls(
            {name: (opt.dest, opt.takes_value()) for name, opt in parser._long_opt.items()},
            {name[1:]: (opt.dest, opt.takes_value()) for name, opt in parser._short_opt.items()},
        )

    def long_is_secret(self, name):
        """Whether Odoo would read ``--name``'s value as a secret.

        optparse takes an exact option, else any unambiguous prefix of one
        (``--db_pa``): a prefix of a secret option is secret even when it is
        ambiguous (Odoo then refuses it, but it was typed).
        """
        if name in self.long:
            return self.long[name][0] in SECRET_DESTS
        if any(dest in SECRET_DESTS for option, (dest, _) in self.long.items() if option.startswith(name)):
            return True
        return bool(_SECRET_OPTION_RE.match(name))


# Odoo 17-19's parser, for callers without Odoo at hand (the launcher before
# Odoo runs, the tests): every short option, and the long ones that are
# secret or a prefix of a secret one. The addon uses the live parser.
ODOO_OPTIONS = OptionTable(
    long={
        "--db_password": ("db_password", True),
        "--smtp-password": ("smtp_password", True),
        "--smtp": ("smtp_server", True),
    },
    short={
        "c": ("config", True),
        "s": ("save", False),
        "i": ("init", True),
        "u": ("update", True),
        "D": ("data_dir", True),
        "P": ("import_partial", True),
        "d": ("db_name", True),
        "r": ("db_user", True),
        "w": ("db_password", True),
        "p": ("http_port", True),
        "l": ("language", True),
        "h": (None, False),
    },
)


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


def redact_cmdline(args, options=ODOO_OPTIONS):
    """A copy of a command line with every secret value replaced.

    Options are read the way Odoo's parser reads them (``options``): long
    ones by any prefix (``--db_pa=x``, ``--smtp-pass x``), short ones
    clustered (``-sw x``, ``-swx``); passwords in URIs go everywhere.
    """
    redacted = []
    hide_next = options_done = False
    for arg in args or []:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
        elif options_done or not arg.startswith("-") or arg == "-":
            redacted.append(_redact_uri(arg))
        elif arg == "--":
            options_done = True  # optparse reads no option after it
            redacted.append(arg)
        elif arg.startswith("--"):
            name, equals, _value = arg.partition("=")
            if not options.long_is_secret(name):
                redacted.append(_redact_uri(arg))
            elif equals:
                redacted.append(f"{name}={REDACTED}")
            else:
                redacted.append(name)
                hide_next = True
        else:
            arg, hide_next = _redact_short_cluster(arg, options)
            redacted.append(_redact_uri(arg))
    return redacted


def _redact_short_cluster(arg, options):
    """``-abc``: flags until the first option taking a value, which takes the
    rest of the argument, or the next one. Returns ``(arg, hide_next)``."""
    for index in range(1, len(arg)):
        dest, takes_value = options.short.get(arg[index], (None, False))
        if not takes_value:
            continue  # a flag, or a letter Odoo does not know (it then refuses the line)
        if dest not in SECRET_DESTS:
            return arg, False
        if index + 1 < len(arg):
            return arg[: index + 1] + REDACTED, False
        return arg, True
    return arg, False


def _redact_uri(arg):
    if "@" in arg:
        arg = _URI_PASSWORD_RE.sub(r"\1" + REDACTED + r"\2", arg)
    if "=" in arg:
        arg = _PASSWORD_PARAM_RE.sub(r"\1" + REDACTED, arg)
    return arg
