"""Batch runs in the application: their tables (``tables``) and store, rows and leases only
(``store``); uploaded datasets (``uploads``) and database queries as inputs (``_inputs``); a
run request checked whole (``validation``) and stored as given (``stored``, read back as a
`RunSpec`); the executor that claims runs and runs them on the batch core (``executor``)
into the run store as their sink (``sink``); what the API shows of them, views, events,
result pages and downloads (``views``); and the placeholders of a request format filled
from chosen columns (``placeholders``).
"""

from .executor import RunExecutor
from .placeholders import alias_row, placeholders_of
from .store import RunStore
from .tables import FINAL_STATUSES, RUN_STATUSES
from .uploads import (
    MULTIPART_SLACK,
    inspect_upload,
    receive_upload,
    remove_upload_file,
    sweep_orphan_uploads,
    too_large,
    upload_body_cap,
    upload_dir,
)
from .validation import DatabaseIn, RunIn, probe_database_input, validate_run
from .views import csv_chunks, event, jsonl_chunks, results_page, run_view, upload_view

__all__ = [
    "FINAL_STATUSES",
    "MULTIPART_SLACK",
    "RUN_STATUSES",
    "DatabaseIn",
    "RunExecutor",
    "RunIn",
    "RunStore",
    "alias_row",
    "csv_chunks",
    "event",
    "inspect_upload",
    "jsonl_chunks",
    "placeholders_of",
    "probe_database_input",
    "receive_upload",
    "remove_upload_file",
    "results_page",
    "run_view",
    "sweep_orphan_uploads",
    "too_large",
    "upload_body_cap",
    "upload_dir",
    "upload_view",
    "validate_run",
]
