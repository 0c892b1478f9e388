# Sourced by the scripts: makes sure the tools the project needs are installed.
# Works on a fresh Debian 12 machine as root; on a prepared machine it changes
# nothing. Whatever Debian packages can provide comes from Debian; only the
# Rust toolchain (Debian 12's rustc is too old) comes from rustup. A step that
# cannot be done stops the script with one line saying what is missing and how
# to provide it.

MIN_RUST_MINOR=89

log() { printf '==> %s\n' "$*" >&2; }

# One line on stderr, then exit 1: for a missing prerequisite.
missing() {
    printf 'blockhost: %s\n' "$*" >&2
    exit 1
}

apt_install() {
    [ "$(id -u)" -eq 0 ] || missing "cannot install $* as $(id -un): run as root, or install them first (apt-get install $*)"
    if [ -z "${APT_UPDATED:-}" ]; then
        apt_get update -qq || missing "apt-get update failed: check /etc/apt/sources.list and the network path to the Debian mirror"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "$@" \
        || missing "apt-get could not install $* (see apt's message above; another apt may hold the lock)"
}

# apt-get that waits up to 5 minutes for a lock held by another apt (apt-daily).
apt_get() {
    apt-get -o DPkg::Lock::Timeout=300 "$@" >&2
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
        rustup toolchain install stable --profile minimal -c clippy >&2 && rustup default stable >&2 \
            || missing "rustup could not install a stable toolchain: provide Rust 1.$MIN_RUST_MINOR+ with clippy on PATH"
    else
        # Fail fast where there is no network path to rustup at all.
        timeout 15 bash -c ': </dev/tcp/sh.rustup.rs/443' 2>/dev/null \
            || missing "no Rust 1.$MIN_RUST_MINOR+ here and sh.rustup.rs cannot be reached: install Rust 1.$MIN_RUST_MINOR+ with clippy (e.g. rustup from another machine) so that cargo is on PATH or in ~/.cargo/bin"
        command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
        local installer
        installer=$(curl --proto '=https' --tlsv1.2 -sSf --connect-timeout 15 --max-time 60 https://sh.rustup.rs 2>/dev/null) \
            || missing "no Rust 1.$MIN_RUST_MINOR+ here and rustup's installer cannot be downloaded: install Rust 1.$MIN_RUST_MINOR+ with clippy (e.g. rustup from another machine) so that cargo is on PATH or in ~/.cargo/bin"
        sh -s -- -y --profile minimal -c clippy <<<"$installer" >&2 \
            || missing "rustup's installer failed (see above): install Rust 1.$MIN_RUST_MINOR+ with clippy by hand"
        . "$HOME/.cargo/env"
    fi
    rust_ok || missing "Rust 1.$MIN_RUST_MINOR+ is still not on PATH after installing it: add ~/.cargo/bin to PATH"
}

# Installs, in one apt-get call, the Debian package of every listed
# `command:package` pair whose command is missing.
ensure_commands() {
    local pair wanted=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || wanted+=("${pair#*:}")
    done
    [ "${#wanted[@]}" -eq 0 ] || apt_install "${wanted[@]}"
}

ensure_build_tools() {
    ensure_commands cc:build-essential pkg-config:pkg-config
    # OpenSSL: the template builder's HTTPS goes through the system's TLS (native-tls)
    pkg-config --exists openssl 2>/dev/null || apt_install libssl-dev
}

# libvirt's C library and headers: the `virt` crate links against them.
ensure_libvirt_dev() {
    ensure_build_tools
    pkg-config --exists libvirt 2>/dev/null || apt_install libvirt-dev
}

# Python, Flask, pytest and PyYAML for the plugin tests, from Debian.
# A python3 ahead of Debian's in PATH (pyenv, a virtualenv) does not see the
# packages apt installs: Debian's then runs as `python3` for the tests.
use_debian_python_if_shadowed() {
    [ "$(command -v python3)" != /usr/bin/python3 ] || return 0
    /usr/bin/python3 -c 'import flask, pytest, yaml' 2>/dev/null || return 0
    local shim
    shim=$(mktemp -d)
    ln -s /usr/bin/python3 "$shim/python3"
    export PATH="$shim:$PATH"
}

ensure_python_test_deps() {
    ensure_commands python3:python3
    python3 -c 'import flask, pytest, yaml' 2>/dev/null && return 0
    apt_install python3-flask python3-pytest python3-yaml
    use_debian_python_if_shadowed
    python3 -c 'import flask, pytest, yaml' 2>/dev/null \
        || missing "python3 cannot import flask, pytest and yaml: install python3-flask python3-pytest python3-yaml"
}

# What the workspace's tests (library, crates, executables) call: qemu-img (template
# overlays), isoinfo (cross-check of our seed ISO), debugfs (template images),
# dpkg-deb (probe packages), setpriv (runs verbs as another user), ip (network
# namespaces), kill and ps (procps; `command -v kill` finds bash's builtin,
# so ps stands for the package), git (the checker copies the tracked files).
# qemu-utils is pinned to bookworm's own version, the one bookworm's
# qemu-system-x86 accepts, as a newer one may be installed.
ensure_rust_test_tools() {
    ensure_commands isoinfo:genisoimage debugfs:e2fsprogs dpkg-deb:dpkg setpriv:util-linux ip:iproute2 ps:procps git:git
    command -v qemu-img >/dev/null 2>&1 || apt_install "$(bookworm_qemu_utils)"
}

bookworm_qemu_utils() {
    [ -n "${APT_UPDATED:-}" ] || { apt_get update -qq && APT_UPDATED=1; }
    local version
    version=$(apt-cache madison qemu-utils | awk '/bookworm\/main|bookworm-security/ {print $3; exit}')
    echo "qemu-utils${version:+=$version}"
}

# What the real-VM tests need: a libvirtd with its QEMU driver, QEMU itself,
# qemu-img, debootstrap, and virsh.
ensure_libvirt_e2e() {
    local missing_any=""
    command -v libvirtd >/dev/null 2>&1 || missing_any=1
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] || missing_any=1
    local tool
    for tool in qemu-system-x86_64 qemu-img debootstrap virsh unshare dpkg-architecture setfacl; do
        command -v "$tool" >/dev/null 2>&1 || missing_any=1
    done
    [ -z "$missing_any" ] && return 0
    [ "$(id -u)" -eq 0 ] || missing "the real-VM tests need libvirtd, QEMU and debootstrap: run as root so they can be installed"
    DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --allow-downgrades --no-install-recommends \
        libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 \
        "$(bookworm_qemu_utils)" debootstrap dpkg-dev util-linux acl \
        || missing "apt-get could not install the hypervisor packages (see apt's message above)"
}

# dpkg-shlibdeps (the packaged binaries' library dependencies) and dpkg-deb.
ensure_dpkg_dev() {
    ensure_commands dpkg-shlibdeps:dpkg-dev
}

# cargo-deb builds the Debian package from bins/Cargo.toml's metadata.
ensure_cargo_deb() {
    cargo deb --version >/dev/null 2>&1 && return 0
    log "installing cargo-deb"
    cargo install cargo-deb --locked >&2 || missing "cargo-deb could not be installed from crates.io: install it with 'cargo install cargo-deb'"
}

ensure_lintian() {
    ensure_commands lintian:lintian
}
