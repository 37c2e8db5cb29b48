"""The application around the connector: HTTP API, saved connectors, web page.

``openai-compat serve`` runs it; in Python::

    from openai_compat.app import AppSettings, create_app
    app = create_app(AppSettings.from_env(data_dir="/tmp/oc"))   # an ASGI app for uvicorn
"""

from .application import StartupReport, create_app
from .egress import AddressPolicy, EgressRefused
from .secrets import KeyCipher, resolve_env_refs
from .server import serve
from .settings import AppSettings

__all__ = [
    "AddressPolicy",
    "AppSettings",
    "EgressRefused",
    "KeyCipher",
    "StartupReport",
    "create_app",
    "resolve_env_refs",
    "serve",
]
