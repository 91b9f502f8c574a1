//! Between attempts: the retry's wait, the request body's hand-back, and the throttle's turn.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::body::drain::Drain;
use crate::body::ResponseBody;
use crate::body::{NotReplayable, ReplayableBody};
use crate::policy::check::CheckBeforeRetry;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{later, Turn};
use crate::{BoxError, Error};

use super::call::{retrying, Call};
use super::outcome::{Keep, Retry};
use super::state::{Attempted, Kept, Pause};
use super::timer::{arm, cut_short, fired, wake_at};
use super::turn::Taken;

/// How long past its wait a retry waits for the previous attempt to hand the request body back
/// (within the call's deadline). A transport lets go of it microseconds after the attempt ends; a
/// copy held longer is taken to be still sending, and the call ends with the last outcome.
const BODY_HANDBACK_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Where a pause stands after a poll.
pub(super) enum Paused<ResB: Body> {
    /// Still waiting; the timer or a waker will poll again.
    Pending,
    /// The kept outcome is no longer needed: its body is drained while the pause goes on.
    Drain(Response<ResponseBody<ResB>>),
    /// Over: the next attempt may be sent.
    Over,
    /// The wait is over and the body back: the check runs on this outcome before the turn.
    Check(Box<Attempted<ResB>>),
    /// The call ends with this.
    End(Result<Response<ResponseBody<ResB>>, Error>),
}

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// The pause before a planned retry of `result`: the timer at the wait's end (or back at the
    /// deadline after an attempt's timeout, `timed`), the outcome drained or kept.
    #[inline]
    pub(super) fn pause(
        &self,
        retry: Retry,
        result: Attempted<ResB>,
        timed: bool,
        timer: Pin<&mut Option<Sleep>>,
    ) -> (Option<Drain<ResponseBody<ResB>>>, Pause<ResB>) {
        let Retry {
            wait,
            keep,
            reserved,
        } = retry;
        let (drain, kept) = match keep {
            Keep::Drain => {
                let limit = self.policy.drain_up_to();
                let drain = result
                    .ok()
                    .and_then(|response| Drain::new(response.into_body(), limit));
                (drain, None)
            }
            keep => {
                let outcome = Box::new(result);
                let for_check = keep == Keep::ForCheck;
                (None, Some(Kept { outcome, for_check }))
            }
        };
        let deadline = self.planner.deadline();
        let until = (!wait.duration.is_zero()).then(|| later(Instant::now(), wait.duration));
        match until {
            Some(end) => arm(timer, Some(wake_at(end, deadline))),
            None if timed => arm(timer, deadline),
            None => {}
        }
        let pause = Pause::Backoff {
            until,
            reserved,
            kept,
        };
        (drain, pause)
    }

    /// Polls the pause through its phases, in order: the wait, the body's hand-back, the throttle's
    /// turn.
    #[inline]
    pub(super) fn poll_pause(
        &mut self,
        pause: &mut Pause<ResB>,
        mut timer: Pin<&mut Option<Sleep>>,
        cx: &mut Context<'_>,
    ) -> Paused<ResB> {
        loop {
            // What is kept of the pause once the wait is over and the body back: the place
            // reserved in the throttle's line, for the turn that follows at once.
            let reserved = match pause {
                Pause::Backoff {
                    until,
                    reserved,
                    kept,
                } => {
                    // The body may come back, or be lost, while the call waits.
                    if let Poll::Ready(back) = self.poll_next_body(cx)
                        && let Some(paused) = self.body_back(back, kept)
                    {
                        return paused;
                    }
                    if let Some(end) = *until {
                        if !fired(timer.as_mut(), cx) {
                            return Paused::Pending;
                        }
                        let deadline = self.planner.deadline();
                        if cut_short(end, deadline) {
                            return Paused::End(Err(self.deadline_passed(false)));
                        }
                        *until = None;
                        arm(timer.as_mut(), deadline);
                    }
                    if !self.has_next_body() {
                        // The wait is over but the previous attempt still holds the body.
                        let end = later(Instant::now(), BODY_HANDBACK_GRACE);
                        arm(timer.as_mut(), Some(wake_at(end, self.planner.deadline())));
                        let (reserved, kept) = (reserved.take(), kept.take());
                        *pause = Pause::BodyBack {
                            until: end,
                            reserved,
                            kept,
                        };
                        continue;
                    }
                    if let Some(last) = take_for_check(kept) {
                        return Paused::Check(last);
                    }
                    reserved.take()
                }
                Pause::BodyBack {
                    until,
                    reserved,
                    kept,
                } => match self.poll_next_body(cx) {
                    Poll::Ready(back) => {
                        if let Some(paused) = self.body_back(back, kept) {
                            return paused;
                        }
                        arm(timer.as_mut(), self.planner.deadline());
                        if let Some(last) = take_for_check(kept) {
                            return Paused::Check(last);
                        }
                        reserved.take()
                    }
                    Poll::Pending => {
                        if !fired(timer.as_mut(), cx) {
                            return Paused::Pending;
                        }
                        if cut_short(*until, self.planner.deadline()) {
                            return Paused::End(Err(self.deadline_passed(false)));
                        }
                        let last = kept.take().map(|kept| *kept.outcome);
                        let why = NotReplayable::StillSending;
                        return Paused::End(self.body_lost(last, why));
                    }
                },
                Pause::Turn { reserved } => reserved.take(),
                Pause::InLine { waiter } => {
                    let deadline = self.planner.deadline();
                    match self.poll_line(waiter, cx) {
                        Turn::Go => {
                            arm(timer.as_mut(), deadline);
                            return Paused::Over;
                        }
                        Turn::Until(at) => {
                            // A fallback: those ahead wake this call when they leave.
                            arm(timer.as_mut(), Some(wake_at(at, deadline)));
                            if !fired(timer.as_mut(), cx) {
                                return Paused::Pending;
                            }
                            if cut_short(at, deadline) {
                                return Paused::End(Err(self.deadline_passed(false)));
                            }
                            continue;
                        }
                        Turn::Refused(why) => return Paused::End(Err(self.refused(why))),
                    }
                }
            };
            // The wait is over and the body back: the throttle's turn.
            match self.take_turn(reserved, cx) {
                Taken::Go => return Paused::Over,
                Taken::InLine(waiter, until) => {
                    let deadline = self.planner.deadline();
                    arm(timer.as_mut(), Some(wake_at(until, deadline)));
                    *pause = Pause::InLine { waiter };
                    if !fired(timer.as_mut(), cx) {
                        return Paused::Pending;
                    }
                    if cut_short(until, deadline) {
                        return Paused::End(Err(self.deadline_passed(false)));
                    }
                }
                Taken::Held(until) => {
                    // Waited out as a backoff is, then the turn is asked for again.
                    let deadline = self.planner.deadline();
                    arm(timer.as_mut(), Some(wake_at(until, deadline)));
                    *pause = Pause::Backoff {
                        until: Some(until),
                        reserved: None,
                        kept: None,
                    };
                }
                Taken::Refused(why) => return Paused::End(Err(self.refused(why))),
            }
        }
    }

    /// The request body came back (`Ok`) or cannot (`Err`): a kept outcome no check needs is
    /// drained now; a lost body ends the call with the kept outcome.
    #[inline]
    fn body_back(
        &mut self,
        back: Result<(), NotReplayable>,
        kept: &mut Option<Kept<ResB>>,
    ) -> Option<Paused<ResB>> {
        match back {
            Err(why) => {
                let last = kept.take().map(|kept| *kept.outcome);
                Some(Paused::End(self.body_lost(last, why)))
            }
            Ok(()) if kept.as_ref().is_some_and(|kept| !kept.for_check) => {
                let kept = kept.take().expect("checked above");
                kept.outcome.ok().map(Paused::Drain)
            }
            Ok(()) => None,
        }
    }

    /// Polls for the next attempt's body while the previous attempt still holds it; `Ready(Ok)` once
    /// it is there.
    #[inline]
    fn poll_next_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), NotReplayable>> {
        if self.has_next_body() {
            return Poll::Ready(Ok(()));
        }
        let copy = match &self.body {
            Ok(copy) => copy,
            Err(why) => return Poll::Ready(Err(*why)),
        };
        let body = ready!(copy.poll_replay(cx))?;
        retrying(&mut self.retry).next_body = Some(body);
        Poll::Ready(Ok(()))
    }
}

/// The kept outcome, when a check is due on it before the turn.
#[inline]
fn take_for_check<ResB: Body>(kept: &mut Option<Kept<ResB>>) -> Option<Box<Attempted<ResB>>> {
    match kept.take() {
        Some(Kept {
            outcome,
            for_check: true,
        }) => Some(outcome),
        // Drained already, or dropped with it: nothing else waits for it.
        _ => None,
    }
}
