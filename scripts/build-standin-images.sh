#!/usr/bin/env bash
# build-standin-images.sh - provide the two images the sidecar lab needs,
# docker.io/library/ubuntu:latest and docker.io/library/nginx:latest, on a
# machine that cannot pull them (no registry, air-gapped classroom, CI).
#
# Who runs it: whoever sets up a machine for the lab (developer, CI job,
# instructor), after scripts/prepare-podman.sh, as the user who will run the
# lab (images are per user in Podman: root's images are not a student's).
# It is safe to run again: images that already exist are kept, except
# stand-ins built by an older version of this script, which are rebuilt.
#
# For each missing image it builds a stand-in from Debian packages with
# mmdebstrap and `podman import`, tagged with the official name so that the
# unmodified manifests/multicontainer-pod.yaml plays, and labelled
# labkit.standin=true so it can be told apart from the real image, and
# labkit.standin.image=NAME, so the kit notices a stand-in under another's name:
#   ubuntu: Debian minbase (bash, coreutils, hostname, ...), CMD /bin/bash
#   nginx:  Debian nginx-light serving /usr/share/nginx/html on port 80,
#           logs to stdout/stderr, no open_file_cache, CMD nginx -g 'daemon off;',
#           and curl (the official image has it too; the in-pod probe uses it)
#
# Usage: scripts/build-standin-images.sh [--force] [--save DIR] [--load DIR] [ubuntu] [nginx]
#   --force     rebuild even if the image exists (replaces it)
#   --save DIR  afterwards write DIR/labkit-standin-NAME.tar (podman save),
#               to carry to air-gapped machines
#   --load DIR  take a missing image from DIR/labkit-standin-NAME.tar
#               (podman load) instead of building it
# Environment:
#   LABKIT_TRY_PULL=1      first try `podman pull` (60 s timeout) of the real image
#   LABKIT_DEBIAN_MIRROR   Debian mirror for mmdebstrap (e.g. a local apt cache
#                          or file:// mirror in a classroom; default deb.debian.org)
#   LABKIT_DEBIAN_SUITE    Debian suite (default bookworm)

set -euo pipefail

SUITE=${LABKIT_DEBIAN_SUITE:-bookworm}
MIRROR=${LABKIT_DEBIAN_MIRROR:-}
PULL_TIMEOUT=60
# Raised whenever the stand-ins change, so machines that have older ones rebuild them.
STANDIN_VERSION=3
STANDIN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say()  { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; }

force=0
save_dir=""
load_dir=""
names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --save) [ $# -ge 2 ] || die "--save needs a directory"; save_dir=$2; shift ;;
        --load) [ $# -ge 2 ] || die "--load needs a directory"; load_dir=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        ubuntu|nginx) names+=("$1") ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[ "${#names[@]}" -gt 0 ] || names=(ubuntu nginx)

command -v podman >/dev/null || die "podman is not installed: run scripts/prepare-podman.sh (as root) first"

work=""
child=""
cleanup() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
        child=""
    fi
    if [ -n "$work" ] && [ -d "$work" ]; then
        rm -rf "$work" 2>/dev/null || podman unshare rm -rf "$work" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# Run a long command in the background and wait for it, so that a TERM/INT
# reaches the trap at once (bash defers traps while a foreground child runs).
run_child() {
    local rc=0
    "$@" &
    child=$!
    wait "$child" || rc=$?
    child=""
    return "$rc"
}

image_ref() { printf 'docker.io/library/%s:latest' "$1"; }
archive_of() { printf '%s/labkit-standin-%s.tar' "$1" "$2"; }

is_standin() {
    [ "$(podman image inspect --format '{{index .Labels "labkit.standin"}}' "$1" 2>/dev/null)" = true ]
}

standin_version() {
    local v
    v=$(podman image inspect --format '{{index .Labels "labkit.standin.version"}}' "$1" 2>/dev/null || true)
    case "$v" in ''|*[!0-9]*) echo 1 ;; *) echo "$v" ;; esac
}

try_pull() {
    local ref=$1
    command -v timeout >/dev/null || { warn "no 'timeout' command: not trying to pull"; return 1; }
    say "LABKIT_TRY_PULL=1: trying podman pull $ref (timeout ${PULL_TIMEOUT}s)"
    if timeout "$PULL_TIMEOUT" podman pull "$ref"; then
        return 0
    fi
    say "pull failed; building a stand-in instead"
    return 1
}

# Customize hooks, run by mmdebstrap with the root directory as $1.
NGINX_HOOK=$(cat <<'HOOK'
set -e
r=$1
# Serve /usr/share/nginx/html (like the official image), IPv4 port 80.
cat >"$r/etc/nginx/sites-available/default" <<'CONF'
# labkit stand-in for the official nginx image's default.conf
server {
    listen 80 default_server;
    server_name localhost;
    root /usr/share/nginx/html;
    index index.html index.htm;
    location / {
        try_files $uri $uri/ =404;
    }
}
CONF
ln -sf ../sites-available/default "$r/etc/nginx/sites-enabled/default"
mkdir -p "$r/usr/share/nginx/html"
# Logs to the container's stdout/stderr, as in the official image.
mkdir -p "$r/var/log/nginx"
ln -sf /dev/stdout "$r/var/log/nginx/access.log"
ln -sf /dev/stderr "$r/var/log/nginx/error.log"
# The lab's file grows while being served: no open_file_cache anywhere.
grep -rlE '^[[:space:]]*open_file_cache' "$r/etc/nginx" 2>/dev/null | while read -r f; do
    sed -i -E 's/^([[:space:]]*)(open_file_cache)/\1# labkit: disabled # \2/' "$f"
done
if grep -rqE '^[[:space:]]*open_file_cache' "$r/etc/nginx"; then
    echo "open_file_cache is still enabled in $r/etc/nginx" >&2; exit 1
fi
HOOK
)
COMMON_HOOK=$(cat <<'HOOK'
set -e
r=$1
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/debconf/*-old \
       "$r"/var/log/apt/* "$r"/var/log/dpkg.log "$r"/var/log/alternatives.log
HOOK
)

build_standin() {
    local name=$1 ref tar include label_src
    ref=$(image_ref "$name")
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (Debian/Ubuntu: apt-get install mmdebstrap; or run scripts/prepare-podman.sh as root)"
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/labkit-standin.XXXXXX")
    tar="$work/rootfs.tar"
    local -a hooks=(--customize-hook="$COMMON_HOOK")
    local -a changes=(--change "ENV PATH=$STANDIN_PATH"
                      --change "LABEL labkit.standin=true"
                      --change "LABEL labkit.standin.version=$STANDIN_VERSION"
                      --change "LABEL labkit.standin.image=$name"
                      --change "LABEL labkit.standin.source=debian-$SUITE-mmdebstrap-minbase")
    case "$name" in
        ubuntu)
            include=bash,coreutils,hostname
            changes+=(--change 'CMD ["/bin/bash"]')
            ;;
        nginx)
            include=nginx-light,curl
            hooks=(--customize-hook="$NGINX_HOOK" "${hooks[@]}")
            changes+=(--change 'CMD ["nginx", "-g", "daemon off;"]'
                      --change 'EXPOSE 80/tcp'
                      --change 'STOPSIGNAL SIGQUIT')
            ;;
    esac
    label_src="Debian $SUITE${MIRROR:+ from $MIRROR}"
    say "building stand-in for $ref from $label_src with mmdebstrap (about 20-40 s)"
    local -a mirror_arg=()
    [ -z "$MIRROR" ] || mirror_arg=("$MIRROR")
    if ! run_child mmdebstrap --quiet --variant=minbase --include="$include" \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            "${hooks[@]}" "$SUITE" "$tar" "${mirror_arg[@]}"; then
        die "mmdebstrap failed for $name (no access to a Debian mirror? set LABKIT_DEBIAN_MIRROR to a local mirror/cache, or use --load DIR with images saved elsewhere by --save DIR)"
    fi
    local old_id=""
    old_id=$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
    say "importing as $ref"
    podman import --quiet "${changes[@]}" \
        --message "labkit stand-in for $ref, built from $label_src" \
        "$tar" "$ref" >/dev/null
    rm -rf "$work"; work=""
    if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$ref")" ]; then
        podman rmi "$old_id" >/dev/null 2>&1 || warn "old image $old_id is still in use; not removed"
    fi
}

check_image() {
    local name=$1 ref out meant
    ref=$(image_ref "$name")
    case "$name" in
        ubuntu)
            out=$(podman run --rm --network none "$ref" bash -c \
                'for c in date sleep tail ls hostname; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done; echo ok') \
                || die "$ref: check failed: $out"
            ;;
        nginx)
            out=$(podman run --rm --network none "$ref" sh -c \
                'for c in sh ls tail cat curl date sleep; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done
                 nginx -T 2>&1 >/tmp/conf || { cat /tmp/conf; exit 1; }
                 grep -q "root /usr/share/nginx/html;" /tmp/conf || { echo "site root is not /usr/share/nginx/html"; exit 1; }
                 if grep -qE "^[[:space:]]*open_file_cache" /tmp/conf; then echo "open_file_cache enabled"; exit 1; fi
                 echo ok' 2>&1) || die "$ref: check failed: $out"
            ;;
    esac
    if is_standin "$ref"; then
        meant=$(podman image inspect --format '{{index .Labels "labkit.standin.image"}}' "$ref")
        [ -z "$meant" ] || [ "$meant" = "$name" ] \
            || die "$ref is the stand-in for $meant, not $name: the images were mixed up when they were copied; load each from its own archive (--save DIR, then --load DIR), or rebuild with --force"
    fi
    say "$ref works ($(is_standin "$ref" && echo 'labkit stand-in' || echo 'not a stand-in'))"
}

for name in "${names[@]}"; do
    ref=$(image_ref "$name")
    meant=""
    rebuild=$force
    if podman image exists "$ref" && is_standin "$ref" && [ "$(standin_version "$ref")" -lt "$STANDIN_VERSION" ]; then
        say "$ref is a stand-in from an older version of this script; rebuilding"
        rebuild=1
    fi
    if podman image exists "$ref" && is_standin "$ref"; then
        meant=$(podman image inspect --format '{{index .Labels "labkit.standin.image"}}' "$ref")
        if [ -n "$meant" ] && [ "$meant" != "$name" ]; then
            say "$ref is the stand-in for $meant (the images were mixed up when copied); replacing it"
            podman untag "$ref" "$ref" >/dev/null 2>&1 || podman rmi "$ref" >/dev/null
            rebuild=1
        fi
    fi
    if podman image exists "$ref" && [ "$rebuild" = 0 ]; then
        if is_standin "$ref"; then
            say "$ref exists (labkit stand-in); skipping (use --force to rebuild)"
        else
            say "$ref exists (not a labkit stand-in: probably the real image); skipping"
        fi
        continue
    fi
    if [ "$force" = 1 ] && podman image exists "$ref" && ! is_standin "$ref"; then
        warn "--force: replacing $ref, which is not a labkit stand-in"
    fi
    if [ -n "$load_dir" ] && [ -f "$(archive_of "$load_dir" "$name")" ]; then
        say "loading $ref from $(archive_of "$load_dir" "$name")"
        podman load --quiet -i "$(archive_of "$load_dir" "$name")" >/dev/null
        podman image exists "$ref" || die "$(archive_of "$load_dir" "$name") did not contain $ref"
    elif [ "${LABKIT_TRY_PULL:-0}" = 1 ] && try_pull "$ref"; then
        :
    else
        [ -z "$load_dir" ] || say "no $(archive_of "$load_dir" "$name"); building instead"
        build_standin "$name"
    fi
    check_image "$name"
done

if [ -n "$save_dir" ]; then
    mkdir -p "$save_dir"
    for name in "${names[@]}"; do
        ref=$(image_ref "$name")
        out=$(archive_of "$save_dir" "$name")
        say "saving $ref to $out"
        rm -f "$out.tmp"
        podman save --quiet -o "$out.tmp" "$ref"
        mv -f "$out.tmp" "$out"
    done
    say "on another machine: scripts/build-standin-images.sh --load $save_dir"
fi

say "images ready:"
podman images --format '    {{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' \
    --filter reference=docker.io/library/ubuntu:latest \
    --filter reference=docker.io/library/nginx:latest
