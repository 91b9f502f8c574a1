//! The seam between the shared state and where it lives: one call per read-modify-write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::error::StoreError;

/// A boxed future, so that backends can be swapped behind one trait object.
pub(crate) type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One exchange with a shared retry budget, applied atomically by the backend at its own clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BudgetCall {
    /// Requests counted since the last exchange.
    pub(crate) deposits: u64,
    /// Units of retry wanted for the lease (1000 units are one retry of cost 1).
    pub(crate) want: u64,
    /// Units every window allows whatever the traffic.
    pub(crate) floor: u64,
    /// Units each request in the window adds.
    pub(crate) per_deposit: u64,
    /// The window, in milliseconds (at least 10).
    pub(crate) window_ms: u64,
}

/// What the backend granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BudgetReply {
    /// Units granted for the lease: `want` at most, and never more than the window allows.
    pub(crate) granted: u64,
    /// Units the window allows in all, and units withdrawn in it (the grant included).
    pub(crate) allowed: u64,
    pub(crate) withdrawn: u64,
}

/// Where fleet-shared state lives. Each method is one atomic read-modify-write.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Credits `call.deposits` and leases up to `call.want` units from the budget under `key`.
    fn budget(&self, key: &str, call: BudgetCall) -> Call<'_, BudgetReply>;

    /// Reports a throttling answer or the server's word to, and leases send slots from, the
    /// schedule of the authority under `key`.
    fn schedule(&self, key: &str, call: ScheduleCall) -> Call<'_, ScheduleReply>;

    /// Marks `mark.0` engaged fleet-wide for `mark.1` ms from now (extending, never shortening),
    /// and answers the authorities engaged now, from the index under `key`.
    fn engaged(&self, key: &str, mark: Option<(&str, u64)>) -> Call<'_, Vec<String>>;

    /// The same backend with its own bounds (a connection's, a response's) set to `timeout`, when
    /// it has any: a fresh connection, not yet made.
    fn with_timeout(&self, _timeout: Duration) -> Option<Arc<dyn Backend>> {
        None
    }
}

/// One exchange with a fleet's schedule of sends to one authority, applied atomically by the
/// backend at its own clock (times in microseconds of that clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScheduleCall {
    /// Send slots wanted for the lease (0: none, only report or read).
    pub(crate) want: u32,
    /// A throttling answer is reported.
    pub(crate) throttled: Option<Refused>,
    /// The server asked for no sends to the authority for this long (`Retry-After`).
    pub(crate) hold_ms: u64,
    /// The server said how many requests it admits, and until when (rate-limit headers).
    pub(crate) quota: Option<(u64, u64)>,
    /// The time, in microseconds, that slots of earlier leases stood for and went unused: the
    /// process woke too late for them. That time held nobody back.
    pub(crate) unused: u64,
    /// Answers admitted since the last exchange, for the fleet's rate admitted and sparse rule.
    pub(crate) admitted: u32,
}

/// A throttling answer, as reported to a fleet's slot schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Refused {
    /// The send the refused request left on; `None` for a request no throttle paced.
    pub(crate) slot: Option<SlotSent>,
    /// It gave a time to come back (bare refusals may be sparse: see the law's sparse rule).
    pub(crate) held: bool,
    /// Requests were waiting in the reporting process's line: the rate admitted is the server's.
    pub(crate) backlogged: bool,
    /// The rate the reporting process was sending at, per second, when this answer engaged the
    /// scope (0: not measured).
    pub(crate) sending: f64,
}

/// The send a refused request left on, on the store's clock (µs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SlotSent {
    /// When its slot was issued, and its time. A request sent on a process's own pacing has
    /// both at when it was sent.
    pub(crate) issued: f64,
    pub(crate) at: f64,
    /// The rate it was spaced at from the slot before it (0: unknown).
    pub(crate) rate: f64,
}

impl ScheduleCall {
    /// `want` slots (none: a read), nothing reported.
    pub(crate) fn lease(want: u32) -> Self {
        Self {
            want,
            throttled: None,
            hold_ms: 0,
            quota: None,
            unused: 0,
            admitted: 0,
        }
    }
}

/// What the schedule answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScheduleReply {
    /// The backend's clock when it answered.
    pub(crate) now: f64,
    /// The first slot leased, the spacing between slots, and how many were leased.
    pub(crate) first: f64,
    pub(crate) interval: f64,
    pub(crate) granted: u32,
    /// Until when the fleet is held (0: never held).
    pub(crate) hold: f64,
    /// The fleet's rate now, in requests per second.
    pub(crate) rate: f64,
    /// The gap between the first slot leased and the slot issued before it (0: none before).
    pub(crate) gap: f64,
    /// When the rate was last cut (negative: never).
    pub(crate) decreased: f64,
}
