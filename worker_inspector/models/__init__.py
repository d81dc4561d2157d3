from . import worker_inspector
