//! The call's one timer: armed at the deadline, an attempt's end, a wait's end or a fallback,
//! whichever the state needs first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

/// When the timer fires during an attempt that starts at `now`: at the attempt's end (`true`)
/// when its timeout ends it no later than the deadline, else at the deadline; `None` when neither
/// is set (or the timeout is too long to be reached).
#[inline]
pub(super) fn attempt_alarm(
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    now: Instant,
) -> (Option<Instant>, bool) {
    let end = timeout.and_then(|timeout| now.checked_add(timeout));
    match (end, deadline) {
        (Some(end), deadline) if deadline.is_none_or(|deadline| end <= deadline) => {
            (Some(end), true)
        }
        (_, deadline) => (deadline, false),
    }
}

/// When the timer is to fire for a wait that ends at `end`: then, or at the deadline when that
/// comes first.
#[inline]
pub(super) fn wake_at(end: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(end, |deadline| end.min(deadline))
}

/// Whether a wait that ended at `end` ended at the deadline rather than at its own end.
#[inline]
pub(super) fn cut_short(end: Instant, deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| deadline < end)
}

/// Sets the timer to fire at `at`, or unarms it.
#[inline]
pub(super) fn arm(mut timer: Pin<&mut Option<Sleep>>, at: Option<Instant>) {
    match (timer.as_mut().as_pin_mut(), at) {
        (Some(sleep), Some(at)) => sleep.reset(at),
        (None, Some(at)) => timer.set(Some(sleep_until(at))),
        (_, None) => timer.set(None),
    }
}

/// Whether an armed timer has fired; an unarmed one never does.
#[inline]
pub(super) fn fired(timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> bool {
    timer
        .as_pin_mut()
        .is_some_and(|sleep| sleep.poll(cx).is_ready())
}

/// `Ready` once the timer, at the deadline, has fired; `Pending` forever when it is unarmed.
#[inline]
pub(super) fn poll_deadline(deadline: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> Poll<()> {
    match deadline.as_pin_mut() {
        Some(sleep) => sleep.poll(cx),
        None => Poll::Pending,
    }
}
