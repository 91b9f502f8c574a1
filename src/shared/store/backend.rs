//! The seam between the shared state and where it lives: one call per read-modify-write.

use std::future::Future;
use std::pin::Pin;

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
}
