from . import worker_inspector
from . import history
from . import ir_cron
from . import worker_inspector_audit
