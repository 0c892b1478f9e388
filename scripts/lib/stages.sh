# Sourced by scripts/test.sh and scripts/check-the-checker.sh: the test stages
# whose results the closing summary counts. Each returns the runner's own
# exit status; nothing here swallows one.

# `cargo test --no-fail-fast ARGS…`: every test binary runs even after one
# fails. The whole output goes to LOG; the terminal gets each binary's result
# line and every failing test.
run_rust_tests() {
    local log=$1
    shift
    local status=0
    cargo test --no-fail-fast "$@" >"$log" 2>&1 || status=$?
    # One line per test binary that has tests, and every failure as it came.
    awk '/^ +(Running|Doc-tests) /{binary=$2 == "unittests" ? $3 : $2}
         /^test result: / && !/ 0 passed; 0 failed; 0 ignored/{print "  " binary ": " substr($0, 14)}
         / \.\.\. FAILED$/{print} /^error(\[|:)/{print}' "$log"
    if [ "$status" -ne 0 ] && ! grep -q '^test result: ' "$log"; then
        log "cargo test failed before running any test; the end of its output:"
        tail -n 40 "$log" >&2
    fi
    return "$status"
}

# pytest over tests/python (or the directory given), reporting to XML.
run_pytest() {
    local xml=$1 dir=${2:-tests/python}
    python3 -m pytest -q -rs --junitxml="$xml" "$dir"
}
