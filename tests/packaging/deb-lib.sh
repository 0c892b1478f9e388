# Helpers of the packaging tests (sourced by test-deb.sh and
# test-deb-proxmox.sh): results, lintian, stand-in dependency packages and a
# scratch root that dpkg installs into (never the host).
# The sourcing script sets PKG (the package name), deb (its path), work (a
# temporary directory it removes) and, before the scratch-root helpers, root.

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok - $*"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

field() { dpkg-deb -f "$deb" "$1"; }

check_lintian() {
    local status=0
    lintian --fail-on error,warning "$deb" >"$work/lintian" 2>&1 || status=$?
    cat "$work/lintian"
    [ "$status" -eq 0 ] || fail "lintian exited $status: errors, warnings, or lintian itself failed"
    ok "lintian: no errors, no warnings"
}

# The files of the package as "mode path" lines, directories left out.
packaged_files() {
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $1, $6 }' | sort
}

# $work/blockhost-common.deb (a stand-in with no files and no scripts) and
# $work/blockhost-test-base.deb, providing every other dependency at the
# version installed on this machine, so dpkg really checks Depends inside the
# scratch root.
make_standins() {
    local arch provides= dep name have deps
    arch=$(dpkg --print-architecture)
    standin() { # name version extra-control-line
        mkdir -p "$work/$1/DEBIAN"
        {
            echo "Package: $1"
            echo "Version: $2"
            echo "Architecture: $arch"
            echo "Maintainer: BlockHost tests <tests@blockhost.invalid>"
            [ -z "$3" ] || echo "$3"
            echo "Description: stand-in for the packaging test"
        } >"$work/$1/DEBIAN/control"
        dpkg-deb --root-owner-group --build "$work/$1" "$work/$1.deb" >/dev/null
    }
    IFS=',' read -ra deps <<<"$(field Depends)"
    for dep in "${deps[@]}"; do
        dep=${dep%%|*}
        name=$(echo "$dep" | awk '{print $1}')
        [ "$name" != blockhost-common ] || continue
        have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)
        [ -n "$have" ] || have=$(echo "$dep" | sed -n 's/.*(>= *\([^)]*\)).*/\1/p')
        provides="${provides:+$provides, }$name (= ${have:-0})"
    done
    standin blockhost-common 0.1.0 ""
    standin blockhost-test-base 1.0 "Provides: $provides"
}

# What apt installs with the package, recommends followed, from an empty
# system (so what this machine happens to have installed hides nothing), in
# simulation only; the "Inst" lines go to $work/pulled.
apt_simulation() {
    local empty=$work/empty-status pulled
    : >"$empty"
    if ! pulled=$(apt-get install -s -q -o APT::Install-Recommends=true -o Dir::State::status="$empty" \
        "$work/blockhost-common.deb" "$deb" 2>&1); then
        echo "$pulled" | tail -n 5 >&2
        fail "apt cannot resolve what the package needs"
    fi
    echo "$pulled" | awk '$1 == "Inst"' >"$work/pulled"
}

# An empty dpkg database under $root, etc/passwd and etc/group from the
# arguments ("name:uid:gid" each, the first one blockhost), and
# var/lib/blockhost as blockhost-common's postinst leaves it.
make_root() {
    local entry name id gid
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/var/log" "$root/etc"
    : >"$root/var/lib/dpkg/status"
    : >"$root/var/lib/dpkg/available"
    : >"$root/etc/passwd"
    : >"$root/etc/group"
    for entry in "$@"; do
        IFS=: read -r name id gid <<<"$entry"
        printf '%s:x:%s:%s::/var/lib/blockhost:/usr/sbin/nologin\n' "$name" "$id" "$gid" >>"$root/etc/passwd"
        printf '%s:x:%s:\n' "$name" "$gid" >>"$root/etc/group"
    done
    mkdir -p "$root/var/lib/blockhost"
    IFS=: read -r _ id gid <<<"$1"
    chown "$id:$gid" "$root/var/lib/blockhost"
    chmod 0750 "$root/var/lib/blockhost"
}

dpkg_root() {
    dpkg --root="$root" --log="$root/var/log/dpkg.log" --force-script-chrootless "$@"
}
installed() {
    [ "$(dpkg-query --root="$root" -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null)" = "ii " ]
}
# Both packages' units, enabled as deb-systemd-helper does it.
WANTS=etc/systemd/system/timers.target.wants/blockhost-gc.timer
RECONCILE_WANTS=etc/systemd/system/multi-user.target.wants/blockhost-reconcile.service
timer_enabled() {
    [ "$(readlink "$root/$WANTS" 2>/dev/null)" = /usr/lib/systemd/system/blockhost-gc.timer ]
}
reconcile_enabled() {
    [ "$(readlink "$root/$RECONCILE_WANTS" 2>/dev/null)" = /usr/lib/systemd/system/blockhost-reconcile.service ]
}

# The manifest's executables, hook, root-agent actions ($1: "actions" when the
# manifest names them, "no-actions" when it must not) and wizard module
# resolve in the scratch root; prints nothing.
check_manifest_resolves() {
    python3 - "$root" "$1" <<'EOF' || fail "manifest verbs do not resolve in the scratch root"
import json, os, sys
root, actions = sys.argv[1], sys.argv[2] == "actions"
assert sys.argv[2] in ("actions", "no-actions")
m = json.load(open(os.path.join(root, "usr/share/blockhost/provisioner.json")))
exes = list(m["commands"].values()) + [m["setup"]["detect"]]
for exe in exes:
    path = os.path.join(root, "usr/bin", exe)
    assert os.path.isfile(path) and os.access(path, os.X_OK), exe
assert len(set(exes)) == 15, exes
assert ("root_agent_actions" in m) == actions
for key in [m["setup"]["first_boot_hook"]] + ([m["root_agent_actions"]] if actions else []):
    assert os.path.isfile(root + key), key
assert os.access(root + m["setup"]["first_boot_hook"], os.X_OK)
module = m["setup"]["wizard_module"].replace(".", "/") + ".py"
assert os.path.isfile(os.path.join(root, "usr/lib/python3/dist-packages", module)), module
EOF
}
