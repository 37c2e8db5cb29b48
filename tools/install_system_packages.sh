#!/usr/bin/env bash
# Install the Debian packages a test tier drives for real, and only those that are missing.
#
#   tools/install_system_packages.sh [--dry-run] GROUP...
#
#   main    postgresql (pg_ctl under /usr/lib/postgresql/*/bin: the production store's tests)
#           chromium   (/usr/bin/chromium: the web page test; never `playwright install`)
#           openjdk-17-jre-headless (a java 17 or later, JAVA_HOME's or on PATH: the Spark tests)
#   compat  cmake, g++ and make (building llama.cpp's llama-server for make test-compat)
#
# Nothing missing: prints so and exits 0 without touching apt. Otherwise runs apt-get update
# and install (waiting up to 15 minutes for another job's dpkg lock), through sudo when not
# root, then checks again. Exits non-zero with a message when it cannot install: no apt-get,
# or not root and no sudo, or a package did not provide what was looked for.
#
# --dry-run prints the apt-get commands instead of running them. SYSTEM_PACKAGES_ROOT (empty by
# default) is put in front of every path looked at, apt-get and sudo included, so that the
# "missing" paths can be exercised without uninstalling anything; SYSTEM_PACKAGES_UID stands
# in for the user id (the sudo path, when run as root).
set -euo pipefail

usage() {
    echo "usage: $0 [--dry-run] {main|compat}..." >&2
    exit 2
}

root="${SYSTEM_PACKAGES_ROOT:-}"
uid="${SYSTEM_PACKAGES_UID:-$(id -u)}"
dry_run=0
groups=()
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run=1 ;;
        main | compat) groups+=("$arg") ;;
        *) usage ;;
    esac
done
[ "${#groups[@]}" -gt 0 ] || usage

# The first executable called $1 on PATH (under the root), printed; fails when there is none.
find_command() {
    local dir
    local IFS=:
    for dir in $PATH; do
        if [ -x "$root$dir/$1" ] && [ ! -d "$root$dir/$1" ]; then
            echo "$root$dir/$1"
            return 0
        fi
    done
    return 1
}

has_pg_ctl() { compgen -G "$root/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; }
has_chromium() { [ -x "$root/usr/bin/chromium" ]; }

# A java of version 17 or later where pyspark looks for one: $JAVA_HOME/bin/java, else java
# on PATH ("1.8.0_392" is version 8, "17.0.15" version 17).
has_java17() {
    local java version major
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$root$JAVA_HOME/bin/java" ]; then
        java="$root$JAVA_HOME/bin/java"
    else
        java="$(find_command java)" || return 1
    fi
    version="$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
    major="${version%%.*}"
    if [ "$major" = 1 ]; then
        major="$(echo "$version" | cut -d. -f2)"
    fi
    [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ]
}

# The packages of the groups asked for whose file or command is missing.
missing_packages() {
    local group
    for group in "${groups[@]}"; do
        case "$group" in
            main)
                has_pg_ctl || echo postgresql
                has_chromium || echo chromium
                has_java17 || echo openjdk-17-jre-headless
                ;;
            compat)
                find_command cmake >/dev/null || echo cmake
                find_command c++ >/dev/null || echo g++
                find_command make >/dev/null || echo make
                ;;
        esac
    done
}

mapfile -t need < <(missing_packages)
if [ "${#need[@]}" -eq 0 ]; then
    echo "system packages (${groups[*]}): nothing missing"
    exit 0
fi
echo "system packages (${groups[*]}): missing ${need[*]}"

if ! apt_get="$(find_command apt-get)"; then
    echo "error: ${need[*]} missing and there is no apt-get to install them with;" \
        "install them with this system's package manager, then run this again" >&2
    exit 1
fi
sudo=()
if [ "$uid" -ne 0 ]; then
    if ! sudo_path="$(find_command sudo)"; then
        echo "error: ${need[*]} missing; installing them needs root, and there is no sudo;" \
            "run this as root: apt-get install ${need[*]}" >&2
        exit 1
    fi
    sudo=("$sudo_path")
fi

run() {
    if [ "$dry_run" -eq 1 ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# Another job may hold the dpkg lock: wait for it rather than fail. `env` sets the variable
# after sudo, whose env_reset would drop one set before it.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$apt_get" -o DPkg::Lock::Timeout=900)
run "${apt[@]}" update -q
run "${apt[@]}" install -y -q "${need[@]}"
[ "$dry_run" -eq 0 ] || exit 0

mapfile -t still < <(missing_packages)
if [ "${#still[@]}" -gt 0 ]; then
    echo "error: apt-get installed ${need[*]}, but what ${still[*]} should provide is still" \
        "missing (pg_ctl under /usr/lib/postgresql/*/bin, /usr/bin/chromium, java 17 or later," \
        "cmake, c++, make)" >&2
    exit 1
fi
echo "system packages (${groups[*]}): installed ${need[*]}"
