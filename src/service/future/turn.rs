//! The throttle's turn: whether the next attempt may leave now, wait in line, or is refused.

use std::task::Context;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::ReplayableBody;
use crate::policy::check::CheckBeforeRetry;
use crate::report::metrics;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{Entered, Refusal, Sent, Turn, Waiter};
use crate::BoxError;

use super::call::{retrying, Call};

/// What the throttle told an attempt that asked for its turn.
pub(super) enum Taken {
    /// Leave now.
    Go,
    /// Wait in line, asking again by this instant at the latest (those ahead wake it sooner).
    InLine(Waiter, Instant),
    /// The route is held: ask again at this instant.
    Held(Instant),
    /// Refused, and why.
    Refused(Refusal),
}

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// Asks the throttle whether the next attempt may leave now, from the place `reserved` for it
    /// during its wait, if any.
    #[inline]
    pub(super) fn take_turn(&mut self, reserved: Option<Waiter>, cx: &mut Context<'_>) -> Taken {
        let throttle = match self.policy.paced_by() {
            // While no scope is throttled: one atomic load, no clock read.
            Some(throttle) if reserved.is_some() || throttle.is_engaged() => throttle.clone(),
            _ => return Taken::Go,
        };
        // Made before the ask: the throttle sees where the attempt goes (a before-retry hook may
        // send it elsewhere, or with another key).
        self.make_next_head();
        let now = Instant::now();
        let deadline = self.planner.deadline();
        let origin = self.origin;
        let retry = retrying(&mut self.retry);
        let head = retry.next_head.as_ref().expect("made above");
        let sent = Sent::head(head, origin);
        let entered = match reserved {
            None => throttle.enter(sent, &mut retry.place, now, now, deadline),
            // Polled where the place was kept; entered anew when the attempt goes elsewhere.
            Some(waiter) => {
                match throttle.resume(waiter, sent, &mut retry.place, now, deadline, cx) {
                    Ok((turn, waiter)) => {
                        let turn = self.answered(turn, &waiter, now);
                        if matches!(turn, Turn::Until(_)) {
                            metrics::throttle_hold();
                        }
                        return taken(turn, waiter);
                    }
                    Err(entered) => entered,
                }
            }
        };
        match entered {
            Entered::Go { sent, scope } => {
                let retry = retrying(&mut self.retry);
                retry.sent_at = Some(sent);
                retry.sent_scope = scope;
                Taken::Go
            }
            // In line: ask once more at once, so that those ahead can wake this one.
            Entered::Wait(waiter, _) => {
                metrics::throttle_hold();
                let turn = self.poll_line(&waiter, cx);
                taken(turn, waiter)
            }
            Entered::Held(until) => {
                metrics::throttle_hold();
                Taken::Held(until)
            }
            Entered::Refused(why) => Taken::Refused(why),
        }
    }

    /// Polls the throttle's line for the turn of the attempt waiting as `waiter`.
    #[inline]
    pub(super) fn poll_line(&mut self, waiter: &Waiter, cx: &mut Context<'_>) -> Turn {
        let Some(throttle) = self.policy.paced_by() else {
            return Turn::Go;
        };
        let now = Instant::now();
        let turn = throttle.poll_turn(waiter, now, cx);
        self.answered(turn, waiter, now)
    }

    /// What the line's answer means for the attempt waiting as `waiter`.
    #[inline]
    fn answered(&mut self, turn: Turn, waiter: &Waiter, now: Instant) -> Turn {
        match turn {
            Turn::Go => {
                let retry = retrying(&mut self.retry);
                retry.sent_at = Some(now);
                retry.sent_scope = Some(waiter.scope());
                Turn::Go
            }
            // Never a timer that has already fired: those ahead wake this one when they leave.
            Turn::Until(at) => Turn::Until(at.max(now + Duration::from_millis(1))),
            refused => refused,
        }
    }
}

/// The line's answer to the attempt waiting as `waiter`, as the pause takes it.
#[inline]
fn taken(turn: Turn, waiter: Waiter) -> Taken {
    match turn {
        Turn::Go => Taken::Go,
        Turn::Until(at) => Taken::InLine(waiter, at),
        Turn::Refused(why) => Taken::Refused(why),
    }
}
