"""The machine the server runs on."""

import os

import psutil

from .schema import Host


def read_host() -> Host:
    mem = psutil.virtual_memory()
    return {
        "cpu_count": os.cpu_count(),
        "memory_total": mem.total,
        "memory_available": mem.available,
        "load_average": list(os.getloadavg()),
        "boot_time": psutil.boot_time(),
    }
