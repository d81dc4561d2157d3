from . import worker_inspector_test
