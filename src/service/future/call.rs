//! What a call keeps between attempts, and how it ends.

use std::marker::PhantomData;
use std::sync::Arc;

use http::request::Parts;
use http::{Request, Response, Uri};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::body::{NotReplayable, ReplayableBody};
use crate::classify::{Decision, RequestInfo};
use crate::plan::{Planner, Schedule};
use crate::policy::check::CheckBeforeRetry;
use crate::policy::idempotency;
use crate::policy::retry_policy::RetryPolicy;
use crate::report::history::{AttemptOutcome, AttemptRecord, RetryHistory, StopReason};
use crate::report::metrics;
use crate::report::on_retry::RetryEvent;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{Place, Refusal, Shed};
use crate::{BoxError, Error};

use super::state::Attempted;

/// Everything a call keeps between attempts.
pub(super) struct Call<S, ReqB, ResB, C> {
    pub(super) service: S,
    pub(super) policy: Arc<RetryPolicy>,
    /// The request head of the first attempt, idempotency key included; each retry sends a copy.
    pub(super) head: Parts,
    /// The body copy kept for later attempts, or why there is none.
    pub(super) body: Result<ReqB, NotReplayable>,
    pub(super) planner: Planner,
    /// What is known of the request's idempotency key.
    pub(super) key: Key,
    /// When the call started, for hooks that ask (`RequestInfo::elapsed`); `None` when nothing can
    /// ask, so such calls read no clock for it.
    pub(super) first_sent: Option<Instant>,
    pub(super) check: C,
    /// Names the wrapped service to the throttle (see [`Retry`](crate::Retry)'s `origin`).
    pub(super) origin: u64,
    /// What only a retry (or the throttle) needs: `None` until the first retry is planned or the
    /// throttle holds the first attempt, so a call that needs neither neither makes nor moves it.
    pub(super) retry: Option<Box<Retrying<ReqB>>>,
    pub(super) _response: PhantomData<fn() -> ResB>,
}

/// What a call keeps once it may retry, or once the throttle has a say in its first attempt. What
/// a wait needs is kept by the wait's state instead.
pub(super) struct Retrying<ReqB> {
    /// What happened so far: the records of the attempts that led to a retry, and the checks.
    pub(super) history: RetryHistory,
    /// The planner's retry state.
    pub(super) schedule: Schedule,
    /// The body of the next attempt, replayed before the wait so a failure is known before sleeping.
    pub(super) next_body: Option<ReqB>,
    /// The head of the next attempt, made before it asks the throttle so that the throttle sees
    /// where it goes.
    pub(super) next_head: Option<Parts>,
    /// The call's place in the throttle's line, from its first ask: retries keep it.
    pub(super) place: Option<Place>,
    /// Where the attempt in flight went, when a before-retry hook sent it elsewhere or with other
    /// headers (another key); what the throttle's answer is about.
    pub(super) sent_to: Option<Box<(Uri, http::HeaderMap)>>,
    /// When the throttle let the attempt in flight go.
    pub(super) sent_at: Option<Instant>,
    /// The scope's key the throttle found as it let the attempt go.
    pub(super) sent_scope: Option<u64>,
    /// The call's number for the throttle, from the first answer that told it to wait: the
    /// throttle holds a route when different calls of it were told.
    pub(super) number: Option<u64>,
}

/// The retry state of `slot`, made on first use.
#[inline]
pub(super) fn retrying<ReqB>(slot: &mut Option<Box<Retrying<ReqB>>>) -> &mut Retrying<ReqB> {
    match slot {
        Some(retry) => retry,
        None => slot.insert(new_retrying()),
    }
}

/// A call's retry state, made once per call that retries: out of line, away from the common path.
#[cold]
#[inline(never)]
fn new_retrying<ReqB>() -> Box<Retrying<ReqB>> {
    Box::new(Retrying {
        history: RetryHistory::default(),
        schedule: Schedule::default(),
        next_body: None,
        next_head: None,
        place: None,
        sent_to: None,
        number: None,
        sent_at: None,
        sent_scope: None,
    })
}

/// What is known of the request's idempotency key, which is looked up only when something needs it
/// (a history reports it; the classifier reads it itself).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// Not looked up yet.
    Unread,
    /// The request carries none.
    Absent,
    /// The request carries the caller's.
    Caller,
    /// The layer set it before the first attempt.
    Injected,
}

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// What the classifier is told of the request: made only for an outcome it is asked about.
    #[inline]
    pub(super) fn request_info(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.head.method,
            uri: &self.head.uri,
            headers: &self.head.headers,
            attempt: self.planner.attempts(),
            idempotency_header: &self.policy.keys().header,
            first_sent: self.first_sent,
        }
    }

    /// Whether the next attempt's body is ready.
    #[inline]
    pub(super) fn has_next_body(&self) -> bool {
        self.retry
            .as_ref()
            .is_some_and(|retry| retry.next_body.is_some())
    }

    /// Ends the call with the last outcome, carrying the history.
    pub(super) fn finish(
        &mut self,
        result: Attempted<ResB>,
        reason: StopReason,
        last: Option<AttemptRecord>,
    ) -> Result<Response<ResponseBody<ResB>>, Error> {
        let mut history = self.close(reason, last);
        match result {
            Ok(mut response) => {
                if history.idempotency_key().is_some() {
                    history.set_replayed(idempotency::is_replayed(
                        self.policy.keys(),
                        response.headers(),
                    ));
                }
                response.extensions_mut().insert(history);
                Ok(response)
            }
            Err(error) => Err(Error::stopped(Some(error), history)),
        }
    }

    /// The deadline passed, during an attempt (which is canceled) or between attempts.
    pub(super) fn deadline_passed(&mut self, during_attempt: bool) -> Error {
        let interrupted = during_attempt.then_some(AttemptRecord {
            outcome: AttemptOutcome::Interrupted,
            decision: Decision::Done,
            retry_after: None,
            wait: None,
        });
        Error::deadline(self.close(StopReason::Deadline, interrupted))
    }

    /// The body of the planned retry cannot be had: the call ends with the last outcome.
    pub(super) fn body_lost(
        &mut self,
        last: Option<Attempted<ResB>>,
        why: NotReplayable,
    ) -> Result<Response<ResponseBody<ResB>>, Error> {
        let reason = StopReason::BodyNotReplayable(why);
        match last {
            Some(result) => self.finish(result, reason, None),
            None => Err(Error::stopped(None, self.close(reason, None))),
        }
    }

    /// The inner service failed while getting ready for a retry.
    pub(super) fn not_ready(&mut self, error: BoxError) -> Error {
        Error::not_ready(error, self.close(StopReason::NotReady, None))
    }

    /// The throttle refused the next attempt.
    pub(super) fn refused(&mut self, why: Refusal) -> Error {
        match why {
            Refusal::Deadline => Error::deadline(self.close(StopReason::Deadline, None)),
            Refusal::Shed(retry_in) => {
                let shed: BoxError = Box::new(Shed::new(retry_in));
                Error::shed(shed, self.close(StopReason::Shed, None))
            }
        }
    }

    /// Records why the call stops, and `last`, the record of the outcome it stops with (when that
    /// is not in the history yet), and hands the history over.
    pub(super) fn close(
        &mut self,
        reason: StopReason,
        last: Option<AttemptRecord>,
    ) -> RetryHistory {
        let mut history = match &mut self.retry {
            Some(retry) => {
                // A retry planned and never sent costs the budget nothing.
                retry.schedule.cancel_retry();
                std::mem::take(&mut retry.history)
            }
            None => RetryHistory::default(),
        };
        if let Some(record) = last {
            history.push(record);
        }
        if self.key != Key::Absent {
            let key = idempotency::key_of(&self.policy.keys().header, &self.head);
            history.set_idempotency_key(key);
        }
        history.stop(reason);
        let attempts = self.planner.attempts();
        let observe = self.policy.observers();
        if reason.gave_up() {
            let head = &self.head;
            observe
                .give_ups
                .gave_up(&head.method, &head.uri, attempts, reason);
        }
        let last = history.attempts().last();
        if attempts > 1 || reason.gave_up() {
            self.policy.report(RetryEvent::Stop {
                attempts,
                outcome: last.map(|attempt| attempt.outcome),
                reason,
            });
        }
        let class = last.and_then(|attempt| match attempt.decision {
            Decision::Retry(class) => Some(class),
            _ => None,
        });
        let waited = || history.total_wait();
        metrics::call_ended(reason, class, attempts, waited, self.policy.is_grpc());
        history
    }
}
