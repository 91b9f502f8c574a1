//! The throttle: pacing against the project's own limiters (`pacing`) and regressions found outside
//! (`regressions`), all under tokio's paused clock.

#[path = "../support/durations.rs"]
mod durations;
#[path = "../support/limiters.rs"]
mod limiters;

mod pacing;
mod regressions;
