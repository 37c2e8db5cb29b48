"""The ASGI middlewares, from the outermost: the security headers on every response
(``security_headers``), the gate that refuses a request without the token or with a body
over its cap before a byte of it is read (``gate``), the ``execute_model`` metrics
(``metrics``), and the hot route's fast lane (``execute_lane``). The paths they watch come
from the routers.
"""

from .execute_lane import ExecuteLane
from .gate import RequestGate, too_large_handler
from .metrics import ExecuteMetrics
from .security_headers import SecurityHeaders

__all__ = ["ExecuteLane", "ExecuteMetrics", "RequestGate", "SecurityHeaders", "too_large_handler"]
