"""The saved connectors: their table and store (``store``), what every use of one needs,
from decrypting its secrets to checking its endpoint's address (``services``, with the
cache of parsed configurations), a name and a configuration checked field by field
(``validation``), and a payload run through a saved connector, as JSON or server-sent
events (``execution``).
"""

from .execution import execute_saved
from .services import ConnectorServices
from .store import CONNECTOR_NAME, ConnectorStore, Unstorable
from .validation import moved_secrets, validate_configuration, validate_name

__all__ = [
    "CONNECTOR_NAME",
    "ConnectorServices",
    "ConnectorStore",
    "Unstorable",
    "execute_saved",
    "moved_secrets",
    "validate_configuration",
    "validate_name",
]
