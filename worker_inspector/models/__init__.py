from . import worker_inspector
from . import ir_http
from . import ir_cron
