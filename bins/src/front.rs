//! The `main` of every executable: it parses its command line itself (help,
//! version and a usage error need nothing more), then loads
//! `libblockhost_cli.so`, the one copy of the verbs with the provider and its
//! backends, and runs the verb there. No executable links libvirt: one that
//! has no backend work to do (`--help`, `--version`, a usage error, a metrics
//! call the shared sample answers) never loads it, and the fifteen share one
//! copy of the code.
#![allow(unsafe_code)]

use crate::entry::{self, Executable, Failure};
use crate::library::{EntryPoint, RUN_SYMBOL};
use std::ffi::{c_char, c_int, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

const LIBRARY: &str = "libblockhost_cli.so";
/// Where the package installs the library, relative to the executables' directory.
const INSTALLED_LIBRARY_DIR: &str = "../lib/blockhost-provisioner";

pub fn main<E: Executable>() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match entry::parse::<E>(argv.clone()) {
        Ok(_) => ExitCode::from(call::<E>(RUN_SYMBOL, &argv)),
        Err(code) => ExitCode::from(code),
    }
}

/// Runs the library's entry point `symbol` for executable `E` with `argv`;
/// a library that cannot be loaded is told as `E`'s failure, exit 1.
pub fn call<E: Executable>(symbol: &[u8], argv: &[OsString]) -> u8 {
    let library = match load() {
        Ok(library) => library,
        Err(message) => return entry::finish::<E>(Err(Failure::new(message))),
    };
    let prog = CString::new(E::PROG).unwrap_or_default();
    let strings: Vec<CString> = argv.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
    let pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    let argc = c_int::try_from(pointers.len()).unwrap_or(c_int::MAX);
    // SAFETY: the library is the one built with these executables and exports
    // `symbol` as an `EntryPoint`; every pointer outlives the call.
    let code = unsafe {
        match library.get::<EntryPoint>(symbol) {
            Ok(entry_point) => entry_point(prog.as_ptr(), argc, pointers.as_ptr()),
            Err(e) => return entry::finish::<E>(Err(Failure::new(format!("{LIBRARY} lacks an entry point: {e}; reinstall the package")))),
        }
    };
    u8::try_from(code).unwrap_or(1)
}

/// The library cargo built with the executable (`target/<profile>/deps/`,
/// which every build writes, while the copy beside the executable is only
/// refreshed by a plain `cargo build`, not by `cargo test`), else the one
/// beside it, else where the package puts it.
fn load() -> Result<libloading::Library, String> {
    let dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from)).unwrap_or_default();
    let candidates = [dir.join("deps").join(LIBRARY), dir.join(LIBRARY), dir.join(INSTALLED_LIBRARY_DIR).join(LIBRARY)];
    let path = candidates.iter().find(|p| p.exists()).unwrap_or(&candidates[2]);
    // SAFETY: our own library; its initialisers are those of Rust's standard
    // library and of libvirt and its dependencies, sound to run here.
    unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot load {}: {e}; reinstall the package", path.display()))
}
