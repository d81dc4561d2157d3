from . import test_snapshot_model
from . import test_ui
from . import test_history_api
from . import test_recycle
from . import test_apps_list
from . import test_stacks
from . import test_audit
from . import test_dbselect
