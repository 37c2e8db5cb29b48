"""Tests marked ``loopback_only`` run where only loopback exists: a network namespace of
their own (``unshare -rn``, no root needed), its ``lo`` brought up.

They are the tests that point at an address outside loopback to show it is refused: had
the refusal failed, nothing there could be reached from inside. The suite's own process
stays outside; the marked test runs again, alone, in a child pytest inside the namespace
(``OC_IN_LOOPBACK_NAMESPACE`` set), and its outcome is the child's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSIDE_ENV = "OC_IN_LOOPBACK_NAMESPACE"
REPO = Path(__file__).resolve().parents[1]

# Brings the namespace's loopback up (SIOCSIFFLAGS: IFF_UP | IFF_LOOPBACK | IFF_RUNNING),
# checks that nothing else is there, then runs the one test.
_CHILD = """
import fcntl, socket, struct, sys
with socket.socket() as _s:
    fcntl.ioctl(_s, 0x8914, struct.pack("16sH", b"lo", 0x1 | 0x8 | 0x40))
assert [name for _, name in socket.if_nameindex()] == ["lo"], socket.if_nameindex()
import pytest
sys.exit(pytest.main(["-q", "--no-header", "-p", "no:randomly", "-p", "no:cacheprovider",
                      "-x", "--tb=short", "--show-capture=no", sys.argv[1]]))
"""


def inside() -> bool:
    """True in the child pytest that runs inside the namespace."""
    return os.environ.get(INSIDE_ENV) == "1"


def run_in_namespace(item: pytest.Item, timeout: float = 600) -> None:
    """Run ``item`` alone in a namespace with only loopback; fail with its output if it
    fails there."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed to isolate this test"
    done = subprocess.run(
        [unshare, "-rn", sys.executable, "-c", _CHILD, item.nodeid],
        cwd=REPO,
        env={**os.environ, INSIDE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        pytest.fail(
            f"in a namespace with only loopback:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}",
            pytrace=False,
        )
