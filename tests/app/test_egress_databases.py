"""The address policy for database inputs: every host libpq would try is judged.

The guard is tested as a function: names resolve through a scripted resolver, so a name
that "resolves" to a metadata address never reaches DNS, and nothing connects anywhere. The
end-to-end refusals (the API, a resumed run) are in test_app_database_inputs.py, on loopback.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from openai_compat.app.egress import AddressPolicy, DatabaseGuard, EgressRefused

# Names of the reserved .test domain (RFC 6761): never resolved for real here.
_DNS = {
    "db.test": ["93.184.216.34"],
    "two.test": ["93.184.216.34", "93.184.216.35"],
    "meta.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],
}


async def _resolver(host: str, port: int) -> list[str]:
    if host not in _DNS:
        raise OSError(f"no such host {host}")
    return _DNS[host]


def _guard(**policy: bool) -> DatabaseGuard:
    return DatabaseGuard(AddressPolicy(resolver=_resolver, **policy))


def _url(text: str) -> object:
    return make_url(text.replace("postgresql://", "postgresql+psycopg://", 1))


def _refused(guard: DatabaseGuard, url: str) -> str:
    with pytest.raises(EgressRefused) as caught:
        guard.check_url(_url(url))  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # The spellings: a host given as a parameter, with no host in the URL.
        ("postgresql://u:p@/db?host=127.0.0.1&port=5432", "127.0.0.1"),
        # A list: one entry refused is enough.
        ("postgresql://u:p@db.test/db?host=db.test,127.0.0.1", "127.0.0.1"),
        ("postgresql://u:p@/db?host=db.test:5432&host=10.1.2.3:5433", "10.1.2.3"),
        # hostaddr overrides a public host name.
        ("postgresql://u:p@db.test/db?hostaddr=10.0.0.7", "10.0.0.7"),
        ("postgresql://u:p@/db?hostaddr=93.184.216.34,192.168.1.1", "192.168.1.1"),
        # A name whose answers include a private address.
        ("postgresql://u:p@mixed.test/db", "10.0.0.5"),
        # A conninfo string merged by psycopg under the URL's keywords.
        ("postgresql://u:p@db.test/db?conninfo=hostaddr%3D172.16.0.1", "172.16.0.1"),
    ],
)
def test_every_host_the_driver_would_try_is_judged_under_refuse_private(
    url: str, words: str
) -> None:
    reason = _refused(_guard(refuse_private=True), url)
    assert words in reason and "refuse" in reason


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@/db?host=169.254.169.254",
        "postgresql://u:p@db.test/db?hostaddr=169.254.169.254",
        "postgresql://u:p@db.test/db?host=db.test,meta.test",
        "postgresql://u:p@/db?host=db.test,169.254.169.254&port=5432,5433",
        "postgresql://u:p@[::ffff:169.254.169.254]:5432/db",
    ],
)
def test_a_metadata_address_is_refused_wherever_the_url_names_it(url: str) -> None:
    assert "link-local" in _refused(_guard(), url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@/db",  # no host at all: libpq's default socket
        "postgresql://u:p@/db?host=/var/run/postgresql",
        "postgresql://u:p@/db?host=/tmp&port=5432",
        "postgresql://u:p@/db?host=@abstract",
        "postgresql://u:p@db.test/db?host=db.test,/tmp",
        "postgresql://u:p@db.test/db?host=db.test,",
    ],
)
def test_a_socket_directory_is_refused(url: str) -> None:
    assert "Unix socket" in _refused(_guard(), url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://u:p@db.test/db?service=prod", "service"),
        ("postgresql://u:p@db.test/db?passfile=/etc/app/pgpass", "passfile"),
        ("postgresql://u:p@db.test/db?sslkey=/etc/app/key.pem", "sslkey"),
        ("postgresql://u:p@db.test/db?host=a.test,b.test&hostaddr=93.184.216.34", "hostaddr"),
        ("postgresql://u:p@db.test/db?host=db.test,db.test&port=1,2,3", "ports"),
        ("postgresql://u:p@db.test/db?hostaddr=db.test", "not an IP address"),
        ("postgresql://u:p@nowhere.test/db", "cannot be resolved"),
        ("postgresql://u:p@db.test/db?nonsense_option=1", "cannot be read"),
        ("postgresql://u:p@/db?host=db.test&port=abc", "port"),
    ],
)
def test_what_the_guard_cannot_judge_is_refused_clearly(url: str, words: str) -> None:
    reason = _refused(_guard(), url)
    assert words in reason
    assert ":p@" not in reason


def test_other_dialects_take_no_query_parameters_from_the_api() -> None:
    reason = _refused(_guard(), "mysql+pymysql://u:p@db.test/x?unix_socket=/run/mysqld.sock")
    assert "no query parameters" in reason


def test_a_dialect_that_is_not_installed_is_left_to_the_connection() -> None:
    # Nothing can connect to it; opening it says which driver is missing.
    assert _guard().check_url(_url("nosuchdb://u:p@db.test/x")) == []  # type: ignore[arg-type]


def test_allowed_names_are_pinned_to_the_addresses_judged() -> None:
    guard = _guard()
    targets = guard.check_url(_url("postgresql://u:p@/db?host=two.test,10.0.0.9&port=5432,6543"))  # type: ignore[arg-type]
    assert [(t.host, t.address, t.port) for t in targets] == [
        ("two.test", "93.184.216.34", "5432"),
        ("two.test", "93.184.216.35", "5432"),
        ("10.0.0.9", "10.0.0.9", "6543"),
    ]
    # At connection time: the keywords libpq gets name every address judged, so a DNS
    # answer that changes afterwards is never used; the name stays the host (TLS, auth).
    params = guard("postgresql", {"host": "two.test,10.0.0.9", "port": "5432,6543", "user": "u"})
    assert params["host"] == "two.test,two.test,10.0.0.9"
    assert params["hostaddr"] == "93.184.216.34,93.184.216.35,10.0.0.9"
    assert params["port"] == "5432,5432,6543"
    assert params["user"] == "u"


def test_the_guard_judges_again_at_each_connection() -> None:
    answers = {"flip.test": ["93.184.216.34"]}

    async def changing(host: str, port: int) -> list[str]:
        return answers[host]

    guard = DatabaseGuard(AddressPolicy(resolver=changing))
    assert guard("postgresql", {"host": "flip.test"})["hostaddr"] == "93.184.216.34"
    answers["flip.test"] = ["169.254.169.254"]  # DNS rebinding after the first check
    with pytest.raises(EgressRefused, match="link-local"):
        guard("postgresql", {"host": "flip.test"})
