//! What `libblockhost_cli.so` exports: the verbs with the provider and its
//! backends, run for the executables' fronts (`front`), which link none of
//! it and load it only when a verb has work to do.
#![allow(unsafe_code)]

use crate::commands;
use crate::entry;
use std::ffi::{c_char, c_int, CStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStringExt;

/// The symbol of [`blockhost_run`], as the fronts look it up.
pub const RUN_SYMBOL: &[u8] = b"blockhost_run\0";
/// The symbol of [`blockhost_metrics_refresh`].
pub const METRICS_REFRESH_SYMBOL: &[u8] = b"blockhost_metrics_refresh\0";

/// The signature of the entry points: the executable's name, its command
/// line, and the exit code.
pub type EntryPoint = unsafe extern "C" fn(*const c_char, c_int, *const *const c_char) -> c_int;

/// Runs the executable `prog` with its command line; 1 for an unknown name.
///
/// # Safety
/// `prog` and the `argc` strings of `argv` must be valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn blockhost_run(prog: *const c_char, argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: as the caller guarantees.
    let (prog, argv) = unsafe { (CStr::from_ptr(prog).to_string_lossy(), arguments(argc, argv)) };
    let code = match commands::runner(&prog) {
        Some(run) => run(argv),
        None => {
            crate::note!("{prog}: this library has no such executable; reinstall the package");
            1
        }
    };
    let _ = std::io::stdout().flush();
    c_int::from(code)
}

/// Retakes the shared metrics sample in one bulk call; the caller holds its
/// refresh lock. The arguments are not read.
///
/// # Safety
/// None: nothing is read through the pointers.
#[no_mangle]
pub unsafe extern "C" fn blockhost_metrics_refresh(_prog: *const c_char, _argc: c_int, _argv: *const *const c_char) -> c_int {
    let refreshed = entry::open_session(false, false).and_then(|session| provisioner::verbs::metrics::all(&session));
    c_int::from(refreshed.is_err())
}

/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: as the caller guarantees.
        .map(|i| OsString::from_vec(unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes().to_vec()))
        .collect()
}
