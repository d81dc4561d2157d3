"""Secrets on command lines: every spelling Odoo's own parser accepts is redacted.

The spellings are generated from Odoo's live option parser (optparse: any
unambiguous prefix of a long option, ``--opt=value`` or ``--opt value``,
short options clustered behind flags, the value glued or apart), and each
one is checked to really set the secret in Odoo before its redaction is.
"""

import copy

import pytest

from worker_inspector.engine.config import ODOO_OPTIONS, REDACTED, SECRET_DESTS, OptionTable, redact_cmdline

odoo_tools = pytest.importorskip("odoo.tools", reason="needs Odoo's option parser (run with Odoo's Python)")

SECRET = "Pw-0f-the-Day"


def _parser():
    return odoo_tools.config.parser


def spellings(parser, dest):
    """Argument lists that set ``dest`` to SECRET, every way optparse accepts."""
    for name, option in parser._long_opt.items():
        if option.dest != dest:
            continue
        for end in range(3, len(name) + 1):
            prefix = name[:end]
            if [n for n in parser._long_opt if n.startswith(prefix)] not in ([name], [prefix]):
                continue  # ambiguous: optparse refuses it
            yield [f"{prefix}={SECRET}"]
            yield [prefix, SECRET]
    flags = "".join(n[1] for n, o in parser._short_opt.items() if not o.takes_value() and n != "-h")
    for name, option in parser._short_opt.items():
        if option.dest != dest:
            continue
        for before in {"", *flags, flags}:
            yield [f"-{before}{name[1]}", SECRET]
            yield [f"-{before}{name[1]}{SECRET}"]


def parsed(parser, args):
    values, _rest = copy.copy(parser).parse_args(list(args), values=parser.get_default_values())
    return values


def all_spellings():
    parser = _parser()
    cases = []
    for dest in sorted(SECRET_DESTS):
        cases += [(dest, args) for args in spellings(parser, dest)]
    return cases


CASES = all_spellings()


def test_there_are_spellings_to_check():
    dests = {dest for dest, _args in CASES}
    assert {"db_password", "smtp_password"} <= dests
    assert ["-sw", SECRET] in [args for _dest, args in CASES]
    assert [f"--db_pa={SECRET}"] in [args for _dest, args in CASES]


@pytest.mark.parametrize(("dest", "args"), CASES, ids=[" ".join(a) for _d, a in CASES])
@pytest.mark.parametrize("table", ["live", "builtin"])
def test_every_spelling_odoo_accepts_is_redacted(dest, args, table):
    parser = _parser()
    assert getattr(parsed(parser, args), dest) == SECRET  # Odoo really reads the secret
    options = OptionTable.from_parser(parser) if table == "live" else ODOO_OPTIONS
    cmdline = ["/usr/bin/python3", "odoo-bin", "-d", "prod", *args, "--workers=2"]
    redacted = redact_cmdline(cmdline, options)
    assert SECRET not in " ".join(redacted)
    assert REDACTED in " ".join(redacted)
    assert redacted[:4] == cmdline[:4] and redacted[-1] == "--workers=2"


@pytest.mark.parametrize(
    "args",
    [
        ["-d", f"postgresql://:{SECRET}@db.example.com/prod"],
        ["-d", f"postgres://odoo:{SECRET}@db/prod"],
        [f"--database=postgresql://odoo:{SECRET}@db:5432/prod"],
        ["-d", f"postgresql://db/prod?user=odoo&password={SECRET}"],
        [f"-dpostgresql://:{SECRET}@db/prod"],
    ],
)
def test_passwords_in_uris_are_redacted(args):
    assert SECRET in str(parsed(_parser(), args).db_name)
    assert SECRET not in " ".join(redact_cmdline(["odoo-bin", *args]))


def test_options_that_are_not_secret_are_left_alone():
    args = ["odoo-bin", "--smtp", "mail.example.com", "-dprod", "-sc", "odoo.conf", "--db_host=db", "-p", "8069"]
    assert redact_cmdline(args, OptionTable.from_parser(_parser())) == args
    assert redact_cmdline(args) == args
