"""The closing summary of scripts/test.sh counts what the runners reported."""

import subprocess
import sys
from pathlib import Path

SUMMARY = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "test_summary.py"

MAIN = """\
     Running unittests src/lib.rs (target/debug/deps/provisioner-0123456789abcdef)

running 3 tests
test a::ok_one ... ok
test a::bad ... FAILED
test a::real_vm ... ignored, real VMs: run by the real-VM stage

failures:

---- a::bad stdout ----
    looks_like_a_name

failures:
    a::bad

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/smoke.rs (target/debug/deps/smoke-fedcba9876543210)

running 2 tests
test skips_here ... ok
test works ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
"""

REAL_VM = """\
     Running unittests src/lib.rs (target/debug/deps/provisioner-0123456789abcdef)

running 1 test
test a::real_vm ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.00s
"""

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="test_x" name="test_ok"/>
<testcase classname="test_x" name="test_bad"><failure message="assert 1 == 2"/></testcase>
<testcase classname="test_x" name="test_skip"><skipped message="PyYAML not installed"/></testcase>
</testsuite></testsuites>"""


def summarise(tmp_path, *args):
    return subprocess.run([sys.executable, str(SUMMARY), *args], capture_output=True, text=True, cwd=tmp_path)


def test_counts_names_and_reasons(tmp_path):
    (tmp_path / "rust-main.log").write_text(MAIN)
    (tmp_path / "rust-real-vm.log").write_text(REAL_VM)
    (tmp_path / "skips.tsv").write_text("skips_here\tisoinfo is not installed\n")
    (tmp_path / "pytest.xml").write_text(JUNIT)
    run = summarise(tmp_path, "--rust", "rust-main.log", "--rust", "rust-real-vm.log", "--skips", "skips.tsv",
                    "--pytest", "pytest.xml", "--stage", "rust=failed", "--stage", "real-VM=ok")
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert "failed tests (2):" in lines
    assert "  provisioner::a::bad" in lines and "  test_x::test_bad" in lines
    assert not any("looks_like_a_name" in line for line in lines), "output of a failed test is not a test name"
    assert "  skips_here: isoinfo is not installed" in lines
    assert "  test_x::test_skip: PyYAML not installed" in lines
    assert not any("real_vm" in line for line in lines), "ignored in one stage, run in another: counted once, as run"
    assert "FAILED stages: rust" in lines
    assert lines[-3:] == [
        "pytest: 1 passed, 1 failed, 1 skipped",
        "Rust: 3 passed, 1 failed, 1 skipped",
        "Total: 4 passed, 2 failed, 2 skipped",
    ]


def test_green_only_when_nothing_failed(tmp_path):
    (tmp_path / "rust-main.log").write_text(REAL_VM)
    assert summarise(tmp_path, "--rust", "rust-main.log", "--stage", "rust=ok").returncode == 0
    stage_failed = summarise(tmp_path, "--rust", "rust-main.log", "--stage", "rust=ok", "--stage", "clippy=failed")
    assert stage_failed.returncode == 1
    assert stage_failed.stdout.splitlines()[-1] == "Total: 1 passed, 0 failed, 0 skipped"
