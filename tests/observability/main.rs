//! What an operator sees of the calls: the `on_retry` hook and attempt numbers (`hook`), `tracing`
//! events (`events`), the bounded give-up warning (`give_up_warnings`) and, with the `metrics`
//! feature, what a recorder receives (`recorder`); without it, the same functions, recording nothing
//! (`metrics_off`).

use retry_test_support::{captured, script};

mod events;
mod give_up_warnings;
mod hook;
mod metrics_off;
mod recorder;
