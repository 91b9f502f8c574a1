//! The decision: what an attempt's outcome calls for ([`classify`]), and what the policy's limits make
//! of it ([`plan`]): retry after a wait, or stop and say why.

pub mod classify;
pub(crate) mod plan;
