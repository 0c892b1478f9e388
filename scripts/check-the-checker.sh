#!/usr/bin/env bash
# Checks the checker: in a scratch copy of the project, one deliberately
# failing test is added to a Rust test binary that cargo runs late
# (bins/tests/smoke.rs) and one to the pytest suite; the same stage
# functions that scripts/test.sh uses must then exit non-zero, and the
# summary must name both tests and exit non-zero too. Reuses this checkout's
# target directory, so only the workspace's own crates are rebuilt, and runs
# only the two probes (a name filter), not the whole suite again. The copy's
# executables replace this checkout's in target/debug (same code: only a test
# differs), so scripts/test.sh runs this stage last.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
. scripts/lib/stages.sh
ensure_commands git:git

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
scratch=$(mktemp -d /tmp/blockhost-checker.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch"

cat >>"$scratch/bins/tests/smoke.rs" <<'EOF'

#[test]
fn checker_probe_must_fail() {
    assert_eq!(1 + 1, 3, "a deliberate failure: scripts/check-the-checker.sh");
}
EOF
cat >"$scratch/tests/python/test_checker_probe.py" <<'EOF'
def test_checker_probe_must_fail():
    assert 1 + 1 == 3, "a deliberate failure: scripts/check-the-checker.sh"
EOF

fail() {
    log "check-the-checker: $*"
    exit 1
}
cd "$scratch"
report=$scratch/report
mkdir -p "$report"

if CARGO_TARGET_DIR=$target_dir run_rust_tests "$report/rust-probe.log" --workspace -- checker_probe >/dev/null; then
    fail "the Rust test stage passed with a failing test in bins/tests/smoke.rs"
fi
grep -q '^test checker_probe_must_fail \.\.\. FAILED$' "$report/rust-probe.log" \
    || fail "the Rust test stage failed, but not because of the probe: see $report/rust-probe.log"
if run_pytest "$report/pytest.xml" >/dev/null; then
    fail "the pytest stage passed with a failing test"
fi
if python3 scripts/lib/test_summary.py --rust "$report/rust-probe.log" --pytest "$report/pytest.xml" --stage rust=failed --stage pytest=failed >"$report/summary"; then
    fail "the summary exits 0 with failing tests"
fi
for name in smoke::checker_probe_must_fail test_checker_probe::test_checker_probe_must_fail; do
    grep -q "^  $name\$" "$report/summary" || { cat "$report/summary" >&2; fail "the summary does not name $name"; }
done
grep -q '^Total: [0-9]* passed, 2 failed' "$report/summary" || { cat "$report/summary" >&2; fail "the summary does not count 2 failures"; }
echo "check-the-checker: a failing Rust test and a failing pytest turn the stages and the summary red, by name"
