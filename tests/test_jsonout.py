"""The API's JSON encoder: orjson where installed, the same JSON as the standard library's."""

import dataclasses
import datetime
import decimal
import json
import os
import time

import pytest

from worker_inspector.engine import jsonout
from worker_inspector.engine.history import HistoryStore
from worker_inspector.engine.vocabulary import Role


@dataclasses.dataclass
class _Point:
    t: float


def _payload():
    return {
        "taken_at": 1765116000.123456,
        "role": Role.HTTP,
        "pids": (4711, 4712),
        "by_pid": {4711: "http", 4712: None},
        "flags": [True, False, None],
        "memory": 2**62,
        "text": 'café \u2603 "quoted" \\ </script>',
        "when": datetime.datetime(2026, 12, 7, 14, 3, 5, 120000),
        "day": datetime.date(2026, 12, 7),
        "price": decimal.Decimal("1.10"),
        "tags": {"one"},
        "point": _Point(1.5),
        "nested": {"deep": [{"x": 1e-7, "y": 1e16, "z": -0.0}]},
    }


def test_orjson_is_installed_with_the_project():
    # setup.cfg requires it: the plain suite runs with the project installed.
    assert jsonout.orjson is not None


def test_the_api_encoder_writes_what_the_standard_librarys_writes():
    payload = _payload()
    encoded = jsonout.orjson_json(payload)  # not the fallback: orjson takes all of it
    assert isinstance(encoded, bytes) and jsonout.to_json(payload) == encoded
    assert json.loads(encoded) == json.loads(jsonout.stdlib_json(payload))
    decoded = json.loads(encoded)
    # What JSON has no type for, as its str (dates as Odoo and the standard library write them).
    assert decoded["when"] == "2026-12-07 14:03:05.120000"
    assert decoded["day"] == "2026-12-07"
    assert decoded["price"] == "1.10"
    assert decoded["tags"] == "{'one'}"
    assert decoded["point"] == "_Point(t=1.5)"
    assert decoded["role"] == "http"
    assert decoded["by_pid"] == {"4711": "http", "4712": None}
    assert decoded["memory"] == 2**62


def test_what_orjson_refuses_is_encoded_by_the_standard_library():
    payload = {"huge": 2**70, "nested": [[[{"a": 1}]]]}
    with pytest.raises(jsonout.orjson.JSONEncodeError):
        jsonout.orjson_json(payload)
    assert json.loads(jsonout.to_json(payload)) == payload


def test_a_day_of_history_encodes_to_the_same_json_both_ways(tmp_path):
    os.chmod(tmp_path, 0o700)
    store = HistoryStore(str(tmp_path), interval=10.0, rows_per_point=3)
    try:
        now = time.time()
        for i in range(200):
            processes = [
                {"pid": 100 + n, "role": role, "rss": (200 << 20) + i, "vms": 600 << 20, "cpu_percent": 3.5 + n}
                for n, role in enumerate(("master", "http", "cron"))
            ]
            point = {"t": now - 2000 + i * 10, "utilization": 0.5, "http_busy": 1, "http_capacity": 2}
            store.add_point(dict(point, backlog=i % 3, requests_per_second=2.5, longest_busy=float("nan")), processes)
        store.add_exit(
            {
                "pid": 4711,
                "role": "http",
                "started_at": now - 100,
                "ended_at": now - 10,
                "reason": "memory_soft",
                "detail": "VMS 2.10 GiB > soft 2.00 GiB",
                "requests": 12,
                "doing": {"url": "/web/dataset/call_kw/sale.order/action_confirm", "elapsed": 1.2},
            }
        )
        answer = store.query(0.0)
    finally:
        store.close()
    assert len(answer["series"]["points"]) == 200 and answer["exits"]
    assert json.loads(jsonout.orjson_json(answer)) == json.loads(jsonout.stdlib_json(answer))
