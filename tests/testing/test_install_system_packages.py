"""tools/install_system_packages.sh, run for real against a made-up system root.

``SYSTEM_PACKAGES_ROOT`` is put in front of every path the script looks at (pg_ctl, Chromium,
the commands on PATH, apt-get and sudo), so each case builds the system it needs in a
temporary directory: the apt-get and sudo found there are stand-ins that record how they were
called (and "install" by creating the files the packages provide). Nothing on this machine is
installed or removed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "install_system_packages.sh"
PATH = "/usr/local/bin:/usr/bin:/bin"

# What each package provides, as the script checks for it.
PROVIDES = {
    "postgresql": "usr/lib/postgresql/16/bin/pg_ctl",
    "chromium": "usr/bin/chromium",
    "openjdk-17-jre-headless": "usr/bin/java",
    "cmake": "usr/bin/cmake",
    "g++": "usr/bin/c++",
    "make": "usr/bin/make",
}

# What a stand-in command prints; the script asks java its version (Spark needs 17 or later).
JAVA_17 = "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2"
BODIES = {"openjdk-17-jre-headless": JAVA_17}

# The stand-in apt-get: records its environment's DEBIAN_FRONTEND and arguments, and on
# install creates what each named package provides (unless APT_PROVIDES_NOTHING is set).
APT_GET = """#!/bin/bash
echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >> "$CALLS"
[ "${APT_PROVIDES_NOTHING:-}" = 1 ] && exit 0
for arg in "$@"; do
    case "$arg" in
PROVIDE_CASES
    esac
done
"""
SUDO = """#!/bin/bash
echo "sudo $*" >> "$CALLS"
exec "$@"
"""


def _executable(path: Path, text: str = "#!/bin/sh\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _system(root: Path, *present: str, apt: bool = True, sudo: bool = False) -> Path:
    """A system root holding what the packages in ``present`` provide, and apt-get / sudo."""
    for package in present:
        _executable(root / PROVIDES[package], f"#!/bin/sh\n{BODIES.get(package, '')}\n")
    if apt:
        cases = "\n".join(
            f'        {package}) mkdir -p "$ROOT/{Path(path).parent}";'
            f' printf "#!/bin/sh\\n%s\\n" {_quoted(BODIES.get(package, ""))} > "$ROOT/{path}";'
            f' chmod +x "$ROOT/{path}" ;;'
            for package, path in PROVIDES.items()
        )
        _executable(root / "usr/bin/apt-get", APT_GET.replace("PROVIDE_CASES", cases))
    if sudo:
        _executable(root / "usr/bin/sudo", SUDO)
    return root


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _run(root: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = root / "calls.log"
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={
            "PATH": PATH,
            "SYSTEM_PACKAGES_ROOT": str(root),
            "ROOT": str(root),
            "CALLS": str(calls),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_nothing_missing_touches_no_apt(tmp_path: Path) -> None:
    root = _system(tmp_path, *PROVIDES)
    done, calls = _run(root, "main", "compat", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "system packages (main compat): nothing missing\n"
    assert calls == []


def test_installs_only_what_is_missing_with_the_lock_timeout(tmp_path: Path) -> None:
    root = _system(tmp_path, "chromium", "openjdk-17-jre-headless")
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 0, done.stderr
    apt = "DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=900"
    assert calls == [f"{apt} update -q", f"{apt} install -y -q postgresql"]
    assert "installed postgresql" in done.stdout
    # Now nothing is missing: a second run leaves apt alone.
    again, calls_after = _run(root, "main", SYSTEM_PACKAGES_UID="0")
    assert again.returncode == 0 and "nothing missing" in again.stdout
    assert calls_after == calls


def test_compat_group_wants_cmake_a_compiler_and_make(tmp_path: Path) -> None:
    root = _system(tmp_path, "cmake")
    done, calls = _run(root, "compat", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 0, done.stderr
    assert calls[-1].endswith("install -y -q g++ make")


def test_not_root_goes_through_sudo_keeping_the_frontend(tmp_path: Path) -> None:
    root = _system(tmp_path, sudo=True)
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="1000")
    assert done.returncode == 0, done.stderr
    apt_get = root / "usr/bin/apt-get"
    assert calls == [
        f"sudo env DEBIAN_FRONTEND=noninteractive {apt_get} -o DPkg::Lock::Timeout=900 update -q",
        "DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=900 update -q",
        f"sudo env DEBIAN_FRONTEND=noninteractive {apt_get} -o DPkg::Lock::Timeout=900"
        " install -y -q postgresql chromium openjdk-17-jre-headless",
        "DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=900"
        " install -y -q postgresql chromium openjdk-17-jre-headless",
    ]


def test_dry_run_prints_the_commands_and_runs_none(tmp_path: Path) -> None:
    root = _system(tmp_path, "postgresql", "openjdk-17-jre-headless")
    done, calls = _run(root, "--dry-run", "main", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 0, done.stderr
    assert calls == []
    apt_get = root / "usr/bin/apt-get"
    assert done.stdout.splitlines() == [
        "system packages (main): missing chromium",
        f"would run: env DEBIAN_FRONTEND=noninteractive {apt_get} -o DPkg::Lock::Timeout=900"
        " update -q",
        f"would run: env DEBIAN_FRONTEND=noninteractive {apt_get} -o DPkg::Lock::Timeout=900"
        " install -y -q chromium",
    ]


def test_a_java_older_than_17_is_missing_and_a_new_one_installed(tmp_path: Path) -> None:
    root = _system(tmp_path, "postgresql", "chromium")
    _executable(
        root / "usr/bin/java", """#!/bin/sh\necho 'openjdk version "11.0.21" 2023-10-17' >&2\n"""
    )
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("system packages (main): missing openjdk-17-jre-headless\n")
    assert calls[-1].endswith("install -y -q openjdk-17-jre-headless")
    again, _ = _run(root, "main", SYSTEM_PACKAGES_UID="0")  # the stand-in put a java 17 there
    assert "nothing missing" in again.stdout


def test_java_8_is_read_from_its_old_version_scheme(tmp_path: Path) -> None:
    root = _system(tmp_path, "postgresql", "chromium")
    _executable(root / "usr/bin/java", """#!/bin/sh\necho 'java version "1.8.0_392"' >&2\n""")
    done, _ = _run(root, "--dry-run", "main", SYSTEM_PACKAGES_UID="0")
    assert "missing openjdk-17-jre-headless" in done.stdout


def test_java_home_is_where_a_java_is_looked_for_first(tmp_path: Path) -> None:
    root = _system(tmp_path, "postgresql", "chromium")  # no java on PATH
    _executable(
        root / "opt/jdk-21/bin/java",
        """#!/bin/sh\necho 'openjdk version "21.0.2" 2024-01-16' >&2\n""",
    )
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="0", JAVA_HOME="/opt/jdk-21")
    assert done.returncode == 0, done.stderr
    assert "nothing missing" in done.stdout and calls == []


def test_no_apt_get_is_a_clear_failure(tmp_path: Path) -> None:
    root = _system(tmp_path, apt=False)
    done, _ = _run(root, "main", SYSTEM_PACKAGES_UID="0")
    assert done.returncode == 1
    assert (
        "postgresql chromium openjdk-17-jre-headless missing and there is no apt-get" in done.stderr
    )


def test_not_root_without_sudo_is_a_clear_failure(tmp_path: Path) -> None:
    root = _system(tmp_path)
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="1000")
    assert done.returncode == 1
    assert "installing them needs root, and there is no sudo" in done.stderr
    assert calls == []


def test_a_package_that_does_not_provide_the_file_fails(tmp_path: Path) -> None:
    root = _system(tmp_path, "postgresql", "openjdk-17-jre-headless")
    done, calls = _run(root, "main", SYSTEM_PACKAGES_UID="0", APT_PROVIDES_NOTHING="1")
    assert done.returncode == 1
    assert len(calls) == 2
    assert "what chromium should provide is still missing" in done.stderr


def test_unknown_group_is_a_usage_error(tmp_path: Path) -> None:
    done, _ = _run(_system(tmp_path), "everything")
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_the_real_system_check_runs(tmp_path: Path) -> None:
    """Without a made-up root: the checks of this machine run, and only report (dry run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSTEM_PACKAGES_")}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # make test ran the script for real before pytest, so nothing is missing now.
    assert done.returncode == 0, done.stderr
    assert done.stdout == "system packages (main): nothing missing\n"
