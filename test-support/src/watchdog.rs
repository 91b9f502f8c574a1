//! Runs a test body on a thread of its own, so a call that never yields fails the test instead of
//! hanging the suite.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `make()` to completion on a current-thread runtime (paused clock if `paused`) on its own
/// thread; panics if it has not finished within `limit` of real time.
pub fn within<F, Fut>(limit: Duration, paused: bool, make: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(paused)
            .build()
            .unwrap();
        let _ = tx.send(runtime.block_on(make()));
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the test body panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {limit:?}: the call never gave the runtime back")
        }
    }
}
