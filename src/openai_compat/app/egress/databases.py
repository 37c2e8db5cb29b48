"""Which database servers a database input from the API may connect to: every host the
driver would try, judged by the address policy at each connection.

A PostgreSQL URL names its servers in more places than its host: libpq's ``host`` and
``hostaddr`` parameters (each a comma list, with a list of ports to match), a ``conninfo``
string, a service file; a host may be a directory (a Unix socket on the application's
machine), and no host at all means the local socket. `DatabaseGuard` reads the keywords the
driver is about to get the way libpq does, judges every entry, and connects each to the
addresses it judged: every name is resolved here and pinned as ``hostaddr`` (the name stays
``host``, for TLS and authentication), so a DNS answer that changes afterwards never takes
a connection elsewhere. It is asked at every new connection (`sql_url.Connecting.hook`),
not only when a run is created: a resumed run, a restart with stricter flags, or a changed
DNS answer is judged again.

Refused from the API: a socket directory (a host starting with ``/`` or ``@``, or none),
parameters that read files on the application's machine (``service``, ``passfile``, the
TLS key and certificate files), and, for other dialects than PostgreSQL, query parameters
(which may name a socket or an options file this guard cannot read).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .policy import AddressPolicy, EgressRefused

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["DatabaseGuard", "DatabaseTarget"]

# Parameters that make libpq read a file on the application's machine (a service file can
# also name other hosts); ``sslrootcert=system`` names the system's store, not a file.
_FILE_PARAMETERS = (
    "service",
    "servicefile",
    "passfile",
    "sslkey",
    "sslcert",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslkeylogfile",
)
# psycopg's own keywords of connect(): not libpq parameters.
_PSYCOPG_KEYWORDS = ("autocommit", "prepare_threshold", "context", "row_factory", "cursor_factory")
# Keywords of other drivers that point at a socket or a file instead of a host.
_OTHER_LOCAL_KEYWORDS = ("unix_socket", "read_default_file", "read_default_group", "named_pipe")
_DEFAULT_PORT = 5432


@dataclass(frozen=True)
class DatabaseTarget:
    """One host the driver will try: its name as written (``""`` when only an address was
    given), the address connected to, and its port as written (``""``: the default)."""

    host: str
    address: str
    port: str


def _entries(value: Any) -> list[str]:
    return [] if value is None else str(value).split(",")


async def _awaited(answer: Awaitable[list[str]]) -> list[str]:
    return await answer


def _port_number(port: str) -> int:
    try:
        return int(port) if port.strip() else _DEFAULT_PORT
    except ValueError:
        raise EgressRefused(f"the database port {port!r} is not a number") from None


@dataclass(frozen=True)
class DatabaseGuard:
    """The address policy applied to database connections (a `sql_url.ConnectHook`)."""

    policy: AddressPolicy

    def check_url(self, url: URL) -> list[DatabaseTarget]:
        """Judge every host ``url`` would connect to, before anything connects; the targets,
        or `EgressRefused`. Blocking (it resolves names): call it in a worker thread."""
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        dialect = url.get_backend_name()
        if dialect != "postgresql" and url.query:
            raise EgressRefused(
                f"a {dialect} URL given to the application takes no query parameters "
                f"(it has {', '.join(sorted(url.query))}): the application cannot tell "
                "where they would connect; write the host and port in the URL itself"
            )
        try:
            engine = create_engine(url)
        except NoSuchModuleError:
            return []  # nothing can connect: opening it says which driver is missing
        except (ArgumentError, TypeError, ValueError) as exc:
            # SQLAlchemy's words name the hosts and ports it could not match, no secret.
            raise EgressRefused(f"the database URL's hosts cannot be read: {exc}") from None
        try:
            _cargs, params = engine.dialect.create_connect_args(url)
        finally:
            engine.dispose()
        return self.targets(dialect, dict(params))[0]

    def __call__(self, dialect: str, params: dict[str, Any]) -> dict[str, Any]:
        """The driver's keywords, judged and pinned to the addresses judged; `EgressRefused`
        when any host is refused. Blocking (it resolves names)."""
        return self.targets(dialect, params)[1]

    def targets(
        self, dialect: str, params: dict[str, Any]
    ) -> tuple[list[DatabaseTarget], dict[str, Any]]:
        """Every host the driver would try for ``params``, and the keywords to connect with."""
        if dialect == "postgresql":
            return self._libpq(params)
        for name in _OTHER_LOCAL_KEYWORDS:
            if params.get(name):
                raise EgressRefused(
                    f"the database parameter {name} points at a socket or a file on the "
                    "application's machine, which a database input never uses"
                )
        host = params.get("host")
        if not isinstance(host, str) or not host.strip():
            raise EgressRefused(self._no_host())
        port = str(params.get("port") or "")
        return [
            DatabaseTarget(host, address, port)
            for address in self._addresses(host, _port_number(port))
        ], params

    def _libpq(self, params: dict[str, Any]) -> tuple[list[DatabaseTarget], dict[str, Any]]:
        from psycopg import Error as PsycopgError
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        keywords = {k: params.pop(k) for k in _PSYCOPG_KEYWORDS if k in params}
        conninfo = str(params.pop("conninfo", "") or "")
        try:
            # What libpq will get: the conninfo string and the keywords, merged as psycopg
            # merges them (a keyword wins).
            effective: dict[str, Any] = conninfo_to_dict(
                make_conninfo(conninfo, **{k: v for k, v in params.items() if v is not None})
            )
        except PsycopgError:
            # libpq's words may quote the conninfo, password and all: not shown.
            raise EgressRefused(
                "the database's connection parameters cannot be read by libpq (a parameter "
                "it does not know, or a malformed conninfo); check the URL's query"
            ) from None
        for name in _FILE_PARAMETERS:
            value = effective.get(name)
            if value and not (name == "sslrootcert" and value == "system"):
                raise EgressRefused(
                    f"the database parameter {name} reads a file on the application's "
                    "machine, which a database input never uses; remove it"
                )
        hosts = _entries(effective.get("host"))
        addresses = _entries(effective.get("hostaddr"))
        ports = _entries(effective.get("port"))
        count = max(len(hosts), len(addresses))
        if count == 0:
            raise EgressRefused(self._no_host())
        if hosts and addresses and len(hosts) != len(addresses):
            raise EgressRefused(
                f"the database URL names {len(hosts)} hosts and {len(addresses)} hostaddr "
                "values: give one address per host, or none"
            )
        if len(ports) > 1 and len(ports) != count:
            raise EgressRefused(
                f"the database URL names {count} hosts and {len(ports)} ports: give one "
                "port for all, or one per host"
            )
        targets: list[DatabaseTarget] = []
        for i in range(count):
            host = hosts[i].strip() if hosts else ""
            address = addresses[i].strip() if addresses else ""
            port = (ports[i] if len(ports) > 1 else ports[0] if ports else "").strip()
            if address:
                targets.append(DatabaseTarget(host, self._address(address), port))
                continue
            if not host or host.startswith(("/", "@")):
                raise EgressRefused(self._no_host(host))
            targets += [
                DatabaseTarget(host, found, port)
                for found in self._addresses(host, _port_number(port))
            ]
        effective["hostaddr"] = ",".join(t.address for t in targets)
        if hosts:
            effective["host"] = ",".join(t.host for t in targets)
        else:
            effective.pop("host", None)
        if len(ports) > 1:
            effective["port"] = ",".join(t.port for t in targets)
        return targets, {**effective, **keywords}

    @staticmethod
    def _no_host(host: str = "") -> str:
        where = f"the database host {host!r} is a directory" if host else "the URL names no host"
        return (
            f"{where}: it would connect to a Unix socket on the application's machine, which "
            "a database input never does; give the database server's host name or address"
        )

    def _address(self, address: str) -> str:
        try:
            ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise EgressRefused(
                f"the database hostaddr {address!r} is not an IP address (write a host name "
                "as host)"
            ) from None
        reason = self.policy.problem(address)
        if reason:
            raise EgressRefused(f"the database address {address} is refused: {reason}")
        return address

    def _addresses(self, host: str, port: int) -> list[str]:
        bare = host.strip("[]")
        try:
            ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            pass
        else:
            return [self._address(bare)]
        try:
            # The policy's resolver is a coroutine; this runs on a worker thread.
            found = asyncio.run(_awaited(self.policy.resolver(host, port)))
        except (OSError, UnicodeError) as exc:
            raise EgressRefused(
                f"the database host {host} cannot be resolved ({type(exc).__name__}: {exc}); "
                "check its name"
            ) from None
        if not found:
            raise EgressRefused(f"the database host {host} resolves to no address")
        for address in found:
            reason = self.policy.problem(address)
            if reason:
                raise EgressRefused(
                    f"the database host {host} (resolves to {address}) is refused: {reason}"
                )
        return list(dict.fromkeys(found))
