"""The JSON the addon writes: the API's answers, the heartbeat's and the audit trail's
columns, the replies and files between its processes.

Encoded with orjson where it is installed: the history's largest answer (24 h
of a 16-worker server, 720 points of 21 processes and 2,048 exits, 2 MB) takes
several times less to encode than with the standard library's encoder, which
is used otherwise. Both write the same JSON: what JSON has no type for (a date, a set)
as its ``str``, as ``json.dumps(payload, default=str)`` does, keys that are
not strings as strings. (The engine sends no float that is not finite: it
writes null for them itself.)
"""

import json

try:
    import orjson
except ImportError:  # optional: the standard library's encoder instead
    orjson = None

# Dates and dataclasses through ``default``, as the standard library's encoder takes them
# (orjson would write forms of its own); keys that are not strings written as strings.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS if orjson else 0
)


def to_json(payload):
    """``payload`` as JSON, UTF-8 bytes."""
    if orjson is None:
        return stdlib_json(payload)
    try:
        return orjson_json(payload)
    except orjson.JSONEncodeError:  # what orjson refuses (an integer beyond 64 bits, ...)
        return stdlib_json(payload)


def orjson_json(payload):
    """``to_json`` with orjson (where it is installed)."""
    return orjson.dumps(payload, default=str, option=_ORJSON_OPTIONS)


def stdlib_json(payload):
    """``to_json`` with the standard library's encoder."""
    return json.dumps(payload, default=str).encode()
