"""OpenAI's Files and Batches API in the application: each batch a run of the run engine.

Its tables (``tables``), the endpoints a batch may name (``endpoints``, one table built
from the API dialects), an input file checked as OpenAI checks it (``checks``), the files
and batches in the database, a batch's status read from its run (``store``), the objects
as OpenAI writes them (``views``, ``schemas``), OpenAI's error object on ``/v1``
(``errors``), what the routes do (``service``), and the background work that
validates, finalizes and expires batches without a read (``keeper``).
"""

from .endpoints import BATCH_ENDPOINTS, endpoint_dialect
from .errors import OPENAI_ROOT, OpenAIErrors, openai_error
from .keeper import BatchKeeper
from .service import BatchIn, BatchService, batch_service
from .views import batch_object, file_object, list_object

__all__ = [
    "BATCH_ENDPOINTS",
    "OPENAI_ROOT",
    "BatchIn",
    "BatchKeeper",
    "BatchService",
    "OpenAIErrors",
    "batch_object",
    "batch_service",
    "endpoint_dialect",
    "file_object",
    "list_object",
    "openai_error",
]
