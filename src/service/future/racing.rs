//! Hedged attempts: copies of an attempt sent while it is still in flight, each a delay after
//! the one before; the first outcome the classifier calls final wins and the others are dropped
//! with the race ([`Race`]). See [`hedge`](crate::hedge) for the rules.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tokio::time::{sleep_until, Instant, Sleep};
use tower_service::Service;

use crate::body::{ReplayableBody, ResponseBody};
use crate::classify::AttemptTimedOut;
use crate::classify::{is_idempotent_method, RetryClass};
use crate::hedge::Hedge;
use crate::plan::Limits;
use crate::policy::check::CheckBeforeRetry;
use crate::policy::idempotency;
use crate::report::history::StopReason;
use crate::report::metrics;
use crate::report::on_retry::RetryEvent;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{later, Entered, Sent};
use crate::{BoxError, Error};

use super::call::{retrying, Call, Key};
use super::outcome::Step;
use super::race::{Race, Running};
use super::state::{Attempted, State};
use super::timer::fired;

/// Where a race stands after a poll.
pub(super) enum Raced<F, CF, ResB: Body> {
    /// Attempts still in flight; the timers or a waker will poll again.
    Pending,
    /// The race is over and the call goes on: a retry's pause.
    Next(State<F, CF, ResB>),
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
    /// The state of the attempt just sent as `future` under a hedging policy: a race when the
    /// request is safe to send twice, else the attempt alone (`Calling`). A route whose delay is
    /// not known yet runs a race of one, to measure it. Called only when the policy hedges.
    #[cold]
    #[inline(never)]
    pub(super) fn racing(
        &mut self,
        future: S::Future,
        timed: bool,
    ) -> State<S::Future, C::Future, ResB> {
        let Some(hedge) = self.policy.hedged_by().cloned() else {
            return State::Calling { future, timed };
        };
        match self.start_race(hedge, future) {
            Ok(race) => State::Racing { race, timed },
            Err(future) => State::Calling { future, timed },
        }
    }

    fn start_race(
        &mut self,
        hedge: Hedge,
        future: S::Future,
    ) -> Result<Box<Race<S::Future>>, S::Future> {
        // A race's responses are not read within their attempts: a buffered call runs alone.
        let safe = hedge.any_method || self.safe_twice();
        if !hedge.may_hedge() || !safe || self.policy.buffer_up_to().is_some() {
            return Err(future);
        }
        let route = hedge.route(&self.head.uri);
        let delay = hedge.delay_for(route);
        let now = Instant::now();
        let attempt = self.planner.attempts();
        Ok(Box::new(Race {
            running: vec![Running {
                attempt,
                future: Box::pin(future),
            }],
            next: delay.map(|delay| Box::pin(sleep_until(later(now, delay)))),
            open: delay.is_some(),
            in_line: None,
            route,
            first: hedge.measures().then_some((attempt, now)),
            delay: delay.unwrap_or_default(),
        }))
    }

    /// Whether the request may be sent twice at once: an idempotent method, or a key.
    fn safe_twice(&self) -> bool {
        match self.key {
            Key::Injected | Key::Caller => true,
            _ if is_idempotent_method(&self.head.method) => true,
            Key::Absent => false,
            Key::Unread => idempotency::key_of(&self.policy.keys().header, &self.head).is_some(),
        }
    }

    /// Polls the race: the next outcome of an attempt, with its number, sending hedges as their
    /// delays pass.
    pub(super) fn poll_race(
        &mut self,
        race: &mut Race<S::Future>,
        cx: &mut Context<'_>,
    ) -> Poll<(u32, Attempted<ResB>)> {
        loop {
            for i in 0..race.running.len() {
                if let Poll::Ready(result) = race.running[i].future.as_mut().poll(cx) {
                    let done = race.running.swap_remove(i);
                    if let Some((first, sent)) = race.first
                        && first == done.attempt
                    {
                        race.first = None;
                        // An attempt that failed without an answer says nothing of latency.
                        if result.is_ok()
                            && let Some(hedge) = self.policy.hedged_by()
                        {
                            hedge.record(race.route, sent.elapsed());
                        }
                    }
                    let result = result
                        .map(|response| response.map(ResponseBody::new))
                        .map_err(Into::into);
                    return Poll::Ready((done.attempt, result));
                }
            }
            let due = match (race.next.as_mut(), race.in_line.as_ref()) {
                (Some(next), _) => next.as_mut().poll(cx).is_ready(),
                // In the budget's line: its deposit wakes the call when the budget serves it.
                (None, Some(place)) => self
                    .policy
                    .hedged_by()
                    .is_some_and(|hedge| hedge.serves(place, cx.waker())),
                (None, None) => false,
            };
            if !due {
                return Poll::Pending;
            }
            match self.hedge(race, cx) {
                // Sent: poll it once, and the timer for the one after.
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Sends a hedge if the rules allow one now; re-arms or disarms the race's timer.
    fn hedge(&mut self, race: &mut Race<S::Future>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(hedge) = self.policy.hedged_by().cloned() else {
            race.close();
            return Poll::Ready(());
        };
        let now = Instant::now();
        if race.running.len() >= hedge.max_in_flight as usize {
            race.next = None; // until one of them ends
            race.in_line = None;
            return Poll::Ready(());
        }
        let limit = Limits::max_attempts(&*self.policy, RetryClass::Transient);
        if self.planner.attempts() >= limit {
            race.close();
            return Poll::Ready(());
        }
        // A copy of the body now, or try again a delay later (the first attempt still sends it).
        let body = match self.body.as_ref().ok().map(ReqB::replay) {
            Some(Ok(body)) => body,
            Some(Err(_)) | None => {
                race.wait(now);
                return Poll::Ready(());
            }
        };
        match self.service.poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => {
                race.close();
                return Poll::Ready(());
            }
            Poll::Ready(Ok(())) => {}
        }
        let attempt = self.planner.attempts().saturating_add(1);
        let head = self.head_for(attempt);
        // Through the throttle like any attempt, but never waiting: a hedge that would wait is
        // not sent (a scope on hold, a paced turn not yet come, a held route).
        if let Some(throttle) = self.policy.paced_by()
            && throttle.is_engaged()
        {
            let deadline = self.planner.deadline();
            let retry = retrying(&mut self.retry);
            let sent = Sent::head(&head, self.origin);
            if !matches!(
                throttle.enter(sent, &mut retry.place, now, now, deadline),
                Entered::Go { .. }
            ) {
                race.wait(now);
                return Poll::Ready(());
            }
        }
        // Spent: wait in line, while the attempt runs, for the calls that follow to refill it.
        if !hedge.withdraw(&mut race.in_line, cx.waker()) {
            race.next = None;
            return Poll::Ready(());
        }
        let retry = retrying(&mut self.retry);
        self.planner.start_attempt(Some(&mut retry.schedule));
        retry.history.hedged();
        metrics::hedge();
        self.policy.report(RetryEvent::Hedge {
            attempt,
            after: race.delay,
        });
        let future = self.service.call(Request::from_parts(head, body));
        race.running.push(Running {
            attempt,
            future: Box::pin(future),
        });
        race.next = match race.running.len() < hedge.max_in_flight as usize {
            true => Some(Box::pin(sleep_until(later(now, race.delay)))),
            false => None,
        };
        Poll::Ready(())
    }

    /// Polls a race, its attempts, its hedges and the call's timer (`timed`: at the race's attempt
    /// timeout, else at the deadline), and acts on each outcome: a final one wins (the others
    /// are dropped with the race); one worth a retry, or given up on, ends nothing while another
    /// attempt runs (A6's non-fatal status) and lets a hedge leave at once; the last one goes
    /// on as an attempt alone's would.
    #[cold]
    #[inline(never)]
    pub(super) fn poll_racing(
        &mut self,
        race: &mut Race<S::Future>,
        timed: bool,
        mut timer: Pin<&mut Option<Sleep>>,
        cx: &mut Context<'_>,
    ) -> Raced<S::Future, C::Future, ResB> {
        loop {
            let (attempt, result) = match self.poll_race(race, cx) {
                Poll::Ready(done) => done,
                Poll::Pending if !fired(timer.as_mut(), cx) => return Raced::Pending,
                Poll::Pending if timed => {
                    // Every attempt in flight timed out with the first.
                    self.measured(race);
                    race.abandon();
                    let attempt = self.planner.attempts();
                    (attempt, Err(Box::new(AttemptTimedOut) as BoxError))
                }
                Poll::Pending => {
                    self.measured(race);
                    return Raced::End(Err(self.deadline_passed(true)));
                }
            };
            let others = race.in_flight() > 0;
            let step = match others {
                true => match self.after_attempt_in_race(&result) {
                    Some(step) => step,
                    None => {
                        race.hedge_now();
                        continue;
                    }
                },
                false => self.after_attempt(&result),
            };
            match step {
                Step::Retry(_) if others => race.hedge_now(),
                Step::Stop(reason, _) if others && reason.gave_up() => race.hedge_now(),
                Step::PassThrough => {
                    return Raced::End(match result {
                        Ok(response) => Ok(response),
                        error => self.finish(error, StopReason::Finished, None),
                    });
                }
                Step::Stop(reason, record) => {
                    self.measured(race);
                    self.won(attempt);
                    return Raced::End(self.finish(result, reason, Some(record)));
                }
                Step::Retry(retry) => {
                    let (drain, pause) = self.pause(retry, result, timed, timer);
                    return Raced::Next(State::Pausing { drain, pause });
                }
            }
        }
    }

    /// The race is over with its first attempt still in flight (a hedge won, or time ran out):
    /// its latency is at least the time it ran, which the route records. Only the first
    /// attempt's latency is recorded, that of a hedge's beaten one included, so that the
    /// percentile is that of attempts: were the hedges that won recorded instead, the slow
    /// attempts they hid would drop out, and the percentile, learned low, would hedge more
    /// calls than it says.
    fn measured(&mut self, race: &mut Race<S::Future>) {
        if let Some((_, sent)) = race.first.take()
            && let Some(hedge) = self.policy.hedged_by()
        {
            hedge.record(race.route, sent.elapsed());
        }
    }

    /// The race was won by `attempt`: the history says so when hedges were sent.
    pub(super) fn won(&mut self, attempt: u32) {
        if let Some(retry) = self.retry.as_mut()
            && retry.history.hedges() > 0
        {
            retry.history.won(attempt);
        }
    }
}
