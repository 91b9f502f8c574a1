//! State shared across calls and clones of a policy: the retry [`budget`] and the shared
//! [`pushback`].

pub mod budget;
pub mod pushback;
