"""``/api/v1/input_formats``: the formats a run's input may have (the page's file picker).

The one table of input formats (`openai_compat.batch.sources`) answers, so the page offers
exactly what an upload accepts and what every engine reads.
"""

from __future__ import annotations

from typing import Any

from ...batch.sources import describe_formats, file_picker_accept
from ..http import InputFormatsOut
from ._common import api_router

__all__ = ["router"]

router = api_router("/input_formats", tags=["runs"])


@router.get("", response_model=InputFormatsOut)
async def list_input_formats() -> dict[str, Any]:
    """The input formats: ``{data: [{name, label, suffixes, ...}], accept}``."""
    return {"data": describe_formats(), "accept": file_picker_accept()}
