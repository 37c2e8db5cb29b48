"""The HTTP shapes every room answers with: the one error shape and its answers
(``problems``: ``ApiError``, the 401 and 413 answers), the answers' models for the OpenAPI
document and the one ``error_responses`` helper (``schemas``), ids and list cursors as the
API writes them (``ids``), JSON rendered to bytes before it is sent (``rendering``), and the
security headers of every response (``page_headers``).
"""

from .ids import (
    CURSOR_PATTERN,
    ID_PATTERN,
    ID_SCHEMA,
    BodyConnectorId,
    CursorText,
    PathConnectorId,
    decode_cursor,
    encode_cursor,
    parse_connector_id,
)
from .page_headers import SECURITY_HEADERS
from .problems import (
    ApiError,
    BodyTooLarge,
    FieldError,
    body_too_large,
    endpoint_error_body,
    install_handlers,
    sign_in_required,
)
from .rendering import (
    json_answer,
    json_document,
    json_response,
    render_json,
    surrogate_problems_of,
)
from .schemas import (
    CatalogOut,
    ConnectionStatusOut,
    ConnectorOut,
    ConnectorPageOut,
    DefinitionOut,
    ExecuteOut,
    HealthOut,
    InputFormatsOut,
    MappingPreviewOut,
    QueryPreviewOut,
    ResultsPageOut,
    RunOut,
    RunPageOut,
    UploadOut,
    error_responses,
)

__all__ = [
    "CURSOR_PATTERN",
    "ID_PATTERN",
    "ID_SCHEMA",
    "SECURITY_HEADERS",
    "ApiError",
    "BodyConnectorId",
    "BodyTooLarge",
    "CatalogOut",
    "ConnectionStatusOut",
    "ConnectorOut",
    "ConnectorPageOut",
    "CursorText",
    "DefinitionOut",
    "ExecuteOut",
    "FieldError",
    "HealthOut",
    "InputFormatsOut",
    "MappingPreviewOut",
    "PathConnectorId",
    "QueryPreviewOut",
    "ResultsPageOut",
    "RunOut",
    "RunPageOut",
    "UploadOut",
    "body_too_large",
    "decode_cursor",
    "encode_cursor",
    "endpoint_error_body",
    "error_responses",
    "install_handlers",
    "json_answer",
    "json_document",
    "json_response",
    "parse_connector_id",
    "render_json",
    "sign_in_required",
    "surrogate_problems_of",
]
