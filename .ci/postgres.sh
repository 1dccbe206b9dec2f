#!/bin/sh
# Ensure the PostgreSQL server binaries (initdb, pg_ctl) are installed for the PostgreSQL target tests.
# The tests start their own throwaway cluster (tests/_pg.py); this script only installs the binaries,
# and only when they are missing (Debian's postgresql package puts them in /usr/lib/postgresql/*/bin).
set -eu

have_bin() {
    command -v "$1" >/dev/null 2>&1 && return 0
    for candidate in /usr/lib/postgresql/*/bin/"$1"; do
        [ -x "$candidate" ] && return 0
    done
    return 1
}

if have_bin initdb && have_bin pg_ctl; then
    echo "postgres.sh: PostgreSQL server binaries present"
    exit 0
fi

echo "postgres.sh: initdb/pg_ctl missing; installing Debian's postgresql package"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "postgres.sh: not root and no sudo: install the 'postgresql' package by hand" >&2
        exit 1
    fi
fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
have_bin initdb && have_bin pg_ctl || { echo "postgres.sh: install finished but initdb/pg_ctl not found" >&2; exit 1; }
echo "postgres.sh: installed"
