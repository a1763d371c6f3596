#!/usr/bin/env bash
# setup-venv.sh - create .venv and install labkit with what the notebooks and tests need.
#
# Who runs it: `make setup` (and so `make demo` / `make test`); safe to run again.
# Needs Python 3.11 or newer. On Debian/Ubuntu without the venv module, as root,
# it installs python3-venv first; otherwise it says what to install.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "labkit needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)"

if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        die "Python's venv module is missing; install it (Debian/Ubuntu: sudo apt-get install python3-venv)"
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[notebooks,test,docs,lint]'
printf '==> %s ready: %s\n' "$VENV" "$("$VENV/bin/python" -c 'import labkit, sys; print("labkit", labkit.__version__, "on Python", sys.version.split()[0])')"
