#!/usr/bin/env bash
# prepare-podman.sh - make Podman usable for the labkit sidecar lab.
#
# Who runs it: whoever sets up a machine for the lab (developer, CI job,
# instructor preparing classroom machines), once per machine, as root
# (sudo). It is safe to run again: it changes only what is missing.
#
# What it does:
#   1. installs podman, runc, catatonit and mmdebstrap with apt-get if any is
#      missing (Debian/Ubuntu, root only; otherwise it prints what to run);
#   2. tests whether this machine may raise RLIMIT_NOFILE/RLIMIT_NPROC to the
#      values rootful Podman asks for (1048576/4194304). Where it may not
#      (no CAP_SYS_RESOURCE, as in some sandboxes and CI), every container
#      fails with "error setting rlimit"; then it installs
#      scripts/runc-rlimit-wrapper as /usr/local/libexec/labkit/ and selects
#      it with the drop-in /etc/containers/containers.conf.d/50-labkit-runtime.conf;
#   3. if the default runtime is crun and crun cannot run a container here
#      (e.g. cgroups in hybrid mode), selects runc instead;
#   4. checks that `podman info` works, prints the runtime in use and runs a
#      tiny container (built from this host's /bin/true, so no image or
#      registry is needed: it works in air-gapped classrooms too).
#
# Images for the lab are made afterwards by scripts/build-standin-images.sh.
# Environment: LABKIT_SKIP_SMOKE_TEST=1 skips step 4's container run.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WRAPPER_SRC="$SCRIPT_DIR/runc-rlimit-wrapper"
WRAPPER_DIR=/usr/local/libexec/labkit
WRAPPER_DST="$WRAPPER_DIR/runc-rlimit-wrapper"
DROPIN_DIR=/etc/containers/containers.conf.d
DROPIN="$DROPIN_DIR/50-labkit-runtime.conf"
RUNTIME_NAME=labkit-runc
PACKAGES=(podman runc catatonit mmdebstrap)
WANT_NOFILE=1048576
WANT_NPROC=4194304

say()  { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

is_debian_like() {
    [ -r /etc/os-release ] || return 1
    local id id_like
    # shellcheck disable=SC1091
    id=$(. /etc/os-release && printf '%s' "${ID:-}")
    # shellcheck disable=SC1091
    id_like=$(. /etc/os-release && printf '%s' "${ID_LIKE:-}")
    case " $id $id_like " in
        *" debian "*|*" ubuntu "*) command -v apt-get >/dev/null ;;
        *) return 1 ;;
    esac
}

install_hint() {
    cat >&2 <<EOF
Install the packages as root, for example:
    sudo apt-get update && sudo apt-get install -y $*      (Debian 12+, Ubuntu 22.04+)
    sudo dnf install -y $*                                (Fedora)
In an air-gapped classroom point apt at a local mirror or cache first
(e.g. apt-cacher-ng, or a file:// mirror on a USB stick).
Then run this script again as root: sudo $0
EOF
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get install $*"
    if ! apt-get install -y "$@"; then
        say "install failed; refreshing package lists (apt-get update) and retrying"
        apt-get update || die "apt-get update failed (no network? configure a local mirror for air-gapped use)"
        apt-get install -y "$@" || die "apt-get install $* failed"
    fi
}

# --- 1. packages --------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if is_root && is_debian_like; then
        apt_install "${missing[@]}"
    elif ! command -v podman >/dev/null 2>&1; then
        printf 'ERROR: podman is not installed (missing: %s).\n' "${missing[*]}" >&2
        install_hint "${missing[*]}"
        exit 1
    else
        warn "missing: ${missing[*]} (needed to build images offline / as OCI runtime)"
        install_hint "${missing[*]}" 2>&1 | sed 's/^/    /' >&2
    fi
else
    say "packages present: ${PACKAGES[*]}"
fi
say "$(podman --version)"

if [ -n "${CONTAINERS_CONF:-}" ]; then
    warn "CONTAINERS_CONF=$CONTAINERS_CONF is set: Podman then reads only that file and ignores $DROPIN_DIR"
fi

# --- 2. the rlimit problem ------------------------------------------------------
rlimit_problem() {
    # Real test: can a child of this shell get the limits rootful Podman
    # requests for every container? 0 = problem exists.
    if command -v prlimit >/dev/null 2>&1; then
        if prlimit --nofile="$WANT_NOFILE:$WANT_NOFILE" \
                   --nproc="$WANT_NPROC:$WANT_NPROC" true 2>/dev/null; then
            return 1
        fi
    elif python3 - "$WANT_NOFILE" "$WANT_NPROC" 2>/dev/null <<'EOF'
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]),) * 2)
resource.setrlimit(resource.RLIMIT_NPROC, (int(sys.argv[2]),) * 2)
EOF
    then
        return 1
    fi
    return 0
}

system_python() {
    local p
    for p in /usr/bin/python3 /usr/local/bin/python3 /bin/python3; do
        if [ -x "$p" ] && "$p" -c 'import json, resource' 2>/dev/null; then
            printf '%s\n' "$p"; return 0
        fi
    done
    return 1
}

real_runc() {
    local p
    for p in /usr/sbin/runc /usr/bin/runc /usr/local/sbin/runc /usr/local/bin/runc; do
        [ -x "$p" ] && { printf '%s\n' "$p"; return 0; }
    done
    return 1
}

# Writes the drop-in if its content differs. $1 = runtime name, $2 = extra lines.
write_dropin() {
    local content tmp
    content="# Written by labkit scripts/prepare-podman.sh; delete this file to undo.
[engine]
runtime = \"$1\"
$2"
    if [ -f "$DROPIN" ] && [ "$(cat "$DROPIN")" = "$content" ]; then
        say "$DROPIN already up to date"
        return 0
    fi
    mkdir -p "$DROPIN_DIR"
    tmp=$(mktemp "$DROPIN_DIR/.labkit.XXXXXX")
    printf '%s\n' "$content" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$DROPIN"
    say "wrote $DROPIN (runtime = \"$1\")"
}

current_runtime() { podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null; }

check_dropin_honoured() {
    local want=$1 got
    got=$(current_runtime) || die "podman info failed after writing $DROPIN"
    if [ "$got" != "$want" ]; then
        cat >&2 <<EOF
ERROR: Podman still uses runtime "$got", not "$want": this Podman does not read
$DROPIN_DIR/*.conf (or CONTAINERS_CONF / ~/.config/containers/containers.conf
overrides it). Add these lines to /etc/containers/containers.conf by hand,
merging them into existing [engine] / [engine.runtimes] tables:
$(sed 's/^/    /' "$DROPIN")
EOF
        exit 1
    fi
}

if ! is_root; then
    # Rootless Podman does not ask for more than the user's own limits, and
    # an ordinary user can never raise them: the test only means something
    # for root. The smoke test below shows whether this user's Podman works.
    say "not root: skipping the rlimit check (it concerns rootful Podman)"
    if [ "$(current_runtime || true)" = "$RUNTIME_NAME" ]; then
        say "the labkit runtime wrapper is configured system-wide"
    fi
elif rlimit_problem; then
    say "this shell cannot raise RLIMIT_NOFILE to $WANT_NOFILE / RLIMIT_NPROC to $WANT_NPROC (no CAP_SYS_RESOURCE);"
    say "rootful containers would fail with 'error setting rlimit': the runtime wrapper is needed"
    [ -f "$WRAPPER_SRC" ] || die "wrapper source not found: $WRAPPER_SRC"
    runc_path=$(real_runc) || die "runc is not installed (apt-get install runc)"
    if ! py=$(system_python); then
        is_debian_like || die "the wrapper needs python3; please install it"
        apt_install python3
        py=$(system_python) || die "python3 still not usable"
    fi
    # Install with the shebang pointing at the system python, because
    # conmon runs the wrapper with a minimal PATH (no pyenv/venv shims).
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    { printf '#!%s\n' "$py"; tail -n +2 "$WRAPPER_SRC"; } >"$tmp"
    if [ -f "$WRAPPER_DST" ] && cmp -s "$tmp" "$WRAPPER_DST"; then
        say "$WRAPPER_DST already up to date"
    else
        install -d -m 0755 "$WRAPPER_DIR"
        # New file, then rename: Podman may be using the old one right now.
        install -m 0755 "$tmp" "$WRAPPER_DST.new"
        mv -f "$WRAPPER_DST.new" "$WRAPPER_DST"
        say "installed $WRAPPER_DST (python: $py, real runc: $runc_path)"
    fi
    rm -f "$tmp"
    trap - EXIT
    "$WRAPPER_DST" --version >/dev/null || die "$WRAPPER_DST --version failed"
    write_dropin "$RUNTIME_NAME" "# runc, with process.rlimits lowered to the caller's hard limits
# (see $WRAPPER_DST). Keep \"$RUNTIME_NAME\" in the JSON list so that
# Podman reads runc's errors as it does for runc itself.
runtime_supports_json = [\"crun\", \"runc\", \"kata\", \"runsc\", \"krun\", \"$RUNTIME_NAME\"]

[engine.runtimes]
$RUNTIME_NAME = [\"$WRAPPER_DST\"]"
    check_dropin_honoured "$RUNTIME_NAME"
else
    say "rlimits can be raised here: no runtime wrapper needed"
    if [ -f "$DROPIN" ]; then
        say "note: $DROPIN exists from an earlier run; keeping it (delete it to undo)"
    fi
fi

# --- 3/4. podman info and a tiny container --------------------------------------
info_out=$(podman info 2>&1) || { printf '%s\n' "$info_out" >&2; die "podman info failed"; }
say "podman info works"

# Run /bin/true of this host inside a container whose root is a temp dir with
# just that binary and its libraries: no image needed.
smoke_dir=""
cleanup_smoke() { [ -z "$smoke_dir" ] || rm -rf "$smoke_dir" 2>/dev/null || true; }
smoke_test() {
    local lib out
    smoke_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/labkit-smoke.XXXXXX")
    trap cleanup_smoke EXIT
    cp /bin/true "$smoke_dir/true"
    for lib in $(ldd /bin/true 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$smoke_dir$(dirname "$lib")"
        cp -L "$lib" "$smoke_dir$lib"
    done
    out=$(podman run --rm --rootfs "$smoke_dir" /true 2>&1)
    local rc=$?
    cleanup_smoke
    smoke_dir=""
    [ "$rc" -eq 0 ] || { printf '%s\n' "$out"; return "$rc"; }
}

if [ "${LABKIT_SKIP_SMOKE_TEST:-0}" = 1 ]; then
    say "smoke test skipped (LABKIT_SKIP_SMOKE_TEST=1)"
else
    say "smoke test: podman run --rm --rootfs <tmpdir with /bin/true> /true"
    if ! out=$(smoke_test); then
        rt=$(current_runtime || true)
        if [ "$rt" = crun ] && is_root && real_runc >/dev/null && [ ! -f "$DROPIN" ]; then
            printf '%s\n' "$out" | sed 's/^/    /' >&2
            say "crun cannot run containers here; selecting runc"
            write_dropin runc ""
            check_dropin_honoured runc
            out=$(smoke_test) || {
                printf '%s\n' "$out" | sed 's/^/    /' >&2
                die "the smoke test fails with runc too"
            }
        else
            printf '%s\n' "$out" | sed 's/^/    /' >&2
            case "$out" in
                *rlimit*) warn "rlimit failure: run this script as root (sudo $0)" ;;
                */dev/net/tun*) warn "rootless networking needs /dev/net/tun to be accessible to you" ;;
                *cgroups\ in\ hybrid\ mode*) warn "crun cannot handle hybrid cgroups here; run this script as root to select runc" ;;
            esac
            die "Podman cannot run a container yet"
        fi
    fi
    say "smoke test passed"
fi

rt_name=$(current_runtime)
rt_path=$(podman info --format '{{.Host.OCIRuntime.Path}}')
rt_ver=$(podman info --format '{{.Host.OCIRuntime.Version}}')
rt_ver=${rt_ver%%$'\n'*}
say "Podman is ready. OCI runtime in use: $rt_name ($rt_path; $rt_ver)"
say "next: scripts/build-standin-images.sh"
