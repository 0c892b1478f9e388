# Sourced by the scripts: makes sure the tools the project needs are installed.
# Works on a fresh Debian 12 machine as root; on a prepared machine it changes nothing.

MIN_RUST_MINOR=89

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
    [ "$(id -u)" -eq 0 ] || { log "not root: cannot apt-get install $*"; return 1; }
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq >&2 && APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

rust_ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    local minor
    minor=$(rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\)\..*/\1/p')
    [ -n "$minor" ] && [ "$minor" -ge "$MIN_RUST_MINOR" ]
}

ensure_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    rust_ok && return 0
    log "installing a Rust toolchain (1.$MIN_RUST_MINOR or newer is required)"
    if command -v rustup >/dev/null 2>&1; then
        rustup toolchain install stable --profile minimal -c clippy >&2 && rustup default stable >&2
    else
        command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy >&2
        . "$HOME/.cargo/env"
    fi
    rust_ok || { log "Rust 1.$MIN_RUST_MINOR+ could not be installed"; return 1; }
}

ensure_build_tools() {
    command -v cc >/dev/null 2>&1 || apt_install build-essential
}

# Flask and pytest for the Python plugin tests, from Debian, else from PyPI.
ensure_python_test_deps() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -c 'import flask, pytest' 2>/dev/null && return 0
    apt_install python3-flask python3-pytest python3-yaml || true
    python3 -c 'import flask, pytest' 2>/dev/null && return 0
    python3 -m pip install --quiet -r tests/python/requirements.txt >&2 \
        || python3 -m pip install --quiet --break-system-packages -r tests/python/requirements.txt >&2
}

# libvirt's C library and headers: the `virt` crate links against them.
ensure_libvirt_dev() {
    pkg-config --exists libvirt 2>/dev/null && return 0
    apt_install libvirt-dev pkg-config
}

# What the real-VM tests need: a libvirtd with its QEMU driver, QEMU itself,
# qemu-img and debootstrap. qemu-utils is pinned to bookworm's own version,
# the one bookworm's qemu-system-x86 accepts, as a newer one may be installed.
ensure_libvirt_e2e() {
    local missing=""
    command -v libvirtd >/dev/null 2>&1 || missing=1
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] || missing=1
    command -v qemu-system-x86_64 >/dev/null 2>&1 || missing=1
    command -v qemu-img >/dev/null 2>&1 || missing=1
    command -v debootstrap >/dev/null 2>&1 || missing=1
    command -v virsh >/dev/null 2>&1 || missing=1
    [ -z "$missing" ] && return 0
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >&2 && APT_UPDATED=1; }
    local utils
    utils=$(apt-cache madison qemu-utils | awk '/bookworm\/main|bookworm-security/ {print $3; exit}')
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades --no-install-recommends \
        libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 \
        "qemu-utils${utils:+=$utils}" debootstrap dpkg-dev >&2
}

# dpkg-shlibdeps (the packaged binaries' library dependencies) and dpkg-deb.
ensure_dpkg_dev() {
    command -v dpkg-shlibdeps >/dev/null 2>&1 || apt_install dpkg-dev
}

# cargo-deb builds the Debian package from bins/Cargo.toml's metadata.
ensure_cargo_deb() {
    cargo deb --version >/dev/null 2>&1 && return 0
    log "installing cargo-deb"
    cargo install cargo-deb --locked >&2
}

ensure_lintian() {
    command -v lintian >/dev/null 2>&1 || apt_install lintian
}
