#!/usr/bin/env bash
# CI leg: the full test suite on the newest jax that pip resolves for Python 3.13.
#
# The CI machine (Debian 12) has only Python 3.11, and jax >= 0.12 needs Python >= 3.12, so
# this leg builds a Debian 13 (trixie) chroot with debootstrap, installs hk_core there into
# a fresh venv and runs the same test command as the main leg. Needs root. Everything lives
# in a temporary directory that is removed on exit, failures included; the mounts are
# undone first, and nothing is removed while any of them is still mounted.
# Run from anywhere: `bash .ci/newest_jax.sh [pytest args]`; the default is CI's full test
# command, e.g. `bash .ci/newest_jax.sh hk_core_tests/core -x` runs one folder instead.
# Env: DEBIAN_MIRROR overrides the mirror (default: the host's own Debian mirror).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
step() { printf '\n===== newest jax: %s =====\n' "$*"; }
start=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    echo "newest_jax.sh: needs root (debootstrap, chroot and mounts); running as uid $(id -u)" >&2
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/hk_newest_jax.XXXXXX")"
root="$work/root"
# Unmounted in reverse order of mounting.
mounts=(proc sys dev dev/pts dev/shm)

mounted_under_root() {
    # Mount targets at or below $root (findmnt prints each target on its own line).
    findmnt -rn -o TARGET | awk -v r="$root" '$0 == r || index($0, r "/") == 1'
}

cleanup() {
    local rc=$? i target
    set +e
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        target="$root/${mounts[i]}"
        if mountpoint -q "$target" 2>/dev/null; then
            umount "$target" 2>/dev/null || umount -l "$target"
        fi
    done
    if [ -n "$(mounted_under_root)" ]; then
        # Removing the tree now could reach through a bind mount into the host's /dev.
        echo "newest_jax.sh: still mounted, so $work is left in place:" >&2
        mounted_under_root >&2
        exit 1
    fi
    rm -rf --one-file-system "$work"
    printf 'newest jax leg: %d s, exit status %d\n' "$((SECONDS - start))" "$rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The chroot sees none of the host's environment but these: the registry settings of pip
# (PIP_*) and any proxy settings, which is how pip on the host reaches the index.
chroot_env=(HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            DEBIAN_FRONTEND=noninteractive)
while IFS= read -r name; do
    chroot_env+=("$name=${!name}")
done < <(compgen -e | grep -E '^(PIP_|(http|https|no|all)_proxy$|(HTTP|HTTPS|NO|ALL)_PROXY$)' || true)
in_root() { chroot "$root" /usr/bin/env -i "${chroot_env[@]}" "$@" </dev/null; }

step "debootstrap Debian 13 (trixie) into $root"
if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null
fi
# The host's own Debian mirror (deb822 sources first, then one-line sources).
mirror="${DEBIAN_MIRROR:-$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
    } | grep -E '/debian/?$' | head -n 1 || true  # no sources file: the default below
)}"
mirror="${mirror:-http://deb.debian.org/debian}"
echo "mirror: $mirror"
PATH="$PATH:/usr/sbin:/sbin" debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates trixie "$root" "$mirror" \
    </dev/null >"$work/debootstrap.log" 2>&1 || { tail -n 50 "$work/debootstrap.log"; exit 1; }

step "host certificates, name resolution and pip settings"
shopt -s nullglob
extra_certs=(/usr/local/share/ca-certificates/*)
shopt -u nullglob
if [ ${#extra_certs[@]} -gt 0 ]; then
    cp -rL "${extra_certs[@]}" "$root/usr/local/share/ca-certificates/"
fi
for file in /etc/hosts /etc/resolv.conf /etc/pip.conf; do
    if [ -e "$file" ]; then cp -L --remove-destination "$file" "$root$file"; fi
done
if [ -d /etc/xdg/pip ]; then
    mkdir -p "$root/etc/xdg" && cp -rL /etc/xdg/pip "$root/etc/xdg/"
fi

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
in_root update-ca-certificates

step "copy the source tree"
mkdir -p "$root/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files: no venvs, build outputs or caches.
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$root/src"
else
    tar -C "$repo" --exclude=./.venv --exclude=./.git -cf - . | tar -xf - -C "$root/src"
fi

step "fresh venv and pip install .[all,test]"
in_root python3 -m venv /venv
in_root sh -c 'cd /src && /venv/bin/python -m pip install ".[all,test]"'
in_root /venv/bin/python -m pip list
in_root /venv/bin/python --version
in_root /venv/bin/python -c 'import jax; print("jax", jax.__version__)'

if [ $# -eq 0 ]; then
    set -- hk_core_tests --doctest-modules hk_core -q --durations=20
fi
step "tests: pytest $*"
in_root sh -c 'cd /src && exec /venv/bin/python -m pytest "$@"' pytest "$@"
