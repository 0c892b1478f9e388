//! In-process tests of every verb on a mock session: each verb function is
//! called as its binary calls it, and the test checks what it left behind
//! (the records in `vms.json`, the addresses, the VM in the backend, files)
//! and, on failure, which error it returned.

#[path = "../support/mock_host.rs"]
mod host;

mod build_template;
mod create;
mod destroy;
mod detect;
mod gc;
mod guest_exec;
mod list;
mod metrics;
mod power;
mod recover;
mod resume;
mod session;
mod status;
mod throttle;
mod update_gecos;
