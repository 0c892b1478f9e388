# What the benchmarks share (sourced after scripts/lib/toolchain.sh, from the
# repository's top, with `caller` the directory they were started from).

# bench_bin_dir DIR NEEDED: DIR, or a release build of this checkout when DIR
# is empty, as an absolute path that holds the executable NEEDED.
bench_bin_dir() {
    local dir=$1 needed=$2
    if [ -z "$dir" ]; then
        ensure_libvirt_dev
        ensure_rust
        log "building the release executables"
        cargo build --quiet --release -p blockhost-provisioner-bins --bins
        dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
    fi
    dir=$(cd "$caller" && cd "$dir" && pwd)
    [ -x "$dir/$needed" ] || missing "no $needed in $dir"
    printf '%s\n' "$dir"
}

# bench_json PATH NAME: PATH made absolute, or target/bench/NAME-<UTC time>.json.
bench_json() {
    if [ -z "$1" ]; then
        printf '%s\n' "$PWD/target/bench/$2-$(date -u +%Y%m%dT%H%M%SZ).json"
    elif [[ "$1" != /* ]]; then
        printf '%s\n' "$caller/$1"
    else
        printf '%s\n' "$1"
    fi
}

# bench_run NAME DRIVER ARGS...: starts a private libvirtd (tests/e2e/libvirtd.sh)
# in a fresh run directory and runs `python3 DRIVER --uri URI --libvirtd-state
# STATE --run-dir RUN ARGS...`, in the background and waited for so that a
# signal runs the cleanup at once; the libvirtd, its guests and the run
# directory are gone when it returns, also when interrupted. Exits with the
# driver's status.
bench_run() {
    local name=$1 script=$2
    shift 2
    # QEMU runs as libvirt-qemu: the run directory must be traversable by everyone.
    RUN=$(mktemp -d "/var/tmp/blockhost-$name.XXXXXX")
    chmod 0755 "$RUN"
    export STATE=$RUN/libvirtd
    driver=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    local uri status=0
    uri=$(bash tests/e2e/libvirtd.sh start)
    python3 -B "$script" --uri "$uri" --libvirtd-state "$STATE" --run-dir "$RUN" "$@" &
    driver=$!
    wait "$driver" || status=$?
    driver=""
    exit "$status"
}

bench_cleanup() {
    # Every step runs, whatever the one before did.
    set +e
    [ -n "$driver" ] && kill "$driver" 2>/dev/null
    bash tests/e2e/libvirtd.sh stop || log "stopping the private libvirtd failed: see $STATE"
    rm -rf "$RUN"
}
