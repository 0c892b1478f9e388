//! What a provider can do beyond the required core. Verbs and the compliance
//! suite ask these flags; they never ask which backend is active.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// guest-exec and update-gecos through an in-guest agent.
    pub guest_agent: bool,
    pub metrics: bool,
    pub throttle: bool,
    /// Throttles survive a stop/start without being re-applied.
    pub persistent_throttle: bool,
    pub snapshots: bool,
    pub hibernation: bool,
    pub multi_host: bool,
    /// Spawning an existing name with the same spec returns the existing VM.
    pub idempotent_spawn: bool,
    pub custom_networking: bool,
}
