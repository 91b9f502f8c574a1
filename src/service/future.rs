//! The response future of [`Retry`](crate::Retry): runs attempts, waits between them, and returns the
//! final response or error.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{Request, Response, StatusCode, Uri};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};
use tower_service::Service;

use crate::body::drain::Drain;
use crate::body::{NotReplayable, ReplayableBody};
use crate::classify::{
    is_idempotent_method, AttemptTimedOut, Decision, ErrorKind, Outcome, RequestInfo, RetryClass,
};
use crate::plan::{Next, Planner, Schedule};
use crate::policy::before_retry::head_for_retry;
use crate::policy::check::{CheckBeforeRetry, CheckRequest, CheckVerdict, NoCheck};
use crate::policy::idempotency;
use crate::policy::per_call;
use crate::policy::retry_policy::RetryPolicy;
use crate::report::attempt::Attempt;
use crate::report::check::{CheckAnswer, CheckRecord};
use crate::report::history::{AttemptOutcome, AttemptRecord, RetryHistory, StopReason};
use crate::report::metrics;
use crate::report::on_retry::RetryEvent;
use crate::service::check_service::{CheckLog, CheckService};
use crate::shared::throttle::{later, Entered, Place, Refusal, Sent, Shed, Turn, Waiter};
use crate::wait::rate_limit::server_delay;
use crate::wait::Wait;
use crate::{BoxError, Error};

pin_project! {
    /// The future returned by [`Retry`](crate::Retry): the final response, or an [`Error`].
    ///
    /// It is `Send` when the service, its future and both body types are.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Service, ServiceExt};
    /// use tower_http_retry::{ResponseFuture, Retry, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = service_fn(|_: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("ok")))
    /// });
    /// let mut client = Retry::new(server, RetryPolicy::default());
    ///
    /// let ready = client.ready().await.unwrap();
    /// let future: ResponseFuture<_, _, _> = ready.call(Request::new(String::new()));
    /// // The whole call, waits and retries included, can run on a task of its own.
    /// let response = tokio::spawn(future).await.unwrap().unwrap();
    /// assert_eq!(response.body(), "ok");
    /// # }
    /// ```
    pub struct ResponseFuture<S, ReqB, ResB, C = NoCheck>
    where
        S: Service<Request<ReqB>>,
        C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
    {
        // Each timer lives in the state that owns it, so the future is no larger than its largest
        // state plus what the whole call keeps.
        #[pin]
        state: State<S::Future, C::Future, ResB>,
        // The call's timer: armed at the whole call's deadline when the policy has one, during an
        // attempt at the attempt's end, and while waiting at the wait's end, when those come first.
        // One timer for all, so the future carries one. Checked whenever a state is pending; `None`
        // when nothing is armed.
        #[pin]
        timer: Option<Sleep>,
        call: Call<S, ReqB, ResB, C>,
    }
}

pin_project! {
    /// Where a call is. Its transitions:
    ///
    /// ```text
    /// new ──▶ Calling ──(retry)──▶ Waiting ──(wait over, body back, turn)──▶ Readying ──(ready)──▶ Calling
    ///  ├──(in the throttle's line)──▲
    ///  └──(refused by the throttle)──▶ Refused ──▶ Done
    /// Waiting ──(wait over, body back, a check due)──▶ Checking ──(check says retry)──▶ Waiting
    /// Calling, Waiting, Checking, Readying ──(final outcome, deadline, not ready, shed)──▶ Done
    /// ```
    #[project = StateProj]
    enum State<F, CF, ResB> {
        /// An attempt is in flight: `future` is the inner service's response future; `timed` says
        /// the call's timer is at the end of the policy's per-attempt timeout, which comes before the
        /// deadline (else it is at the deadline, or unarmed). Ends with its outcome, or when the
        /// timer fires: an `AttemptTimedOut` outcome when `timed`, else the deadline (the call's
        /// error). The outcome is classified and planned: a retry goes to `Waiting`, anything else
        /// returns and goes to `Done`.
        Calling { #[pin] future: F, timed: bool },
        /// Waiting before the next attempt until `until` (none for a zero wait; also the grace for
        /// the request body to come back, or, in the throttle's line, a fallback for the turn; the
        /// call's timer is at it when it comes before the deadline, else at the deadline), while
        /// `drain` reads the last response's discarded body so an HTTP/1.1 connection can be reused
        /// (dropped when the wait ends). Then, in order: the request body must be back from the previous
        /// attempt (waited for up to a grace, else the call ends with the last outcome), and the
        /// throttle must give the attempt its turn (waited for in its line, or refused: shed or past
        /// the deadline). Goes to `Readying` then, or returns the deadline error if the deadline
        /// passes first. A first attempt that must wait in the throttle's line starts here.
        Waiting { until: Option<Instant>, #[pin] drain: Option<Drain<ResB>> },
        /// The last outcome may have taken effect, the wait is over and the body is back: the check
        /// runs (`future`), bounded by the deadline. Retry goes back to `Waiting`, for the throttle's
        /// turn; stop or an answer of its own returns and goes to `Done`. Never entered without a
        /// check.
        Checking { #[pin] future: CF },
        /// The wait is over and the service clone is driven to readiness (`poll_ready`). Ready: the
        /// next attempt is dispatched and the call goes to `Calling`. An error from `poll_ready`, or
        /// the deadline, ends the call.
        Readying,
        /// The throttle refused the first attempt (shed, or its turn would pass the deadline): the
        /// call ends at the first poll with that error.
        Refused,
        /// The output has been returned; polling again panics, as `Future` allows.
        Done,
    }
}

/// Everything a call keeps between attempts.
struct Call<S, ReqB, ResB, C> {
    service: S,
    policy: Arc<RetryPolicy>,
    /// The request head of the first attempt, idempotency key included; each retry sends a copy.
    head: Parts,
    /// The body copy kept for later attempts, or why there is none.
    body: Result<ReqB, NotReplayable>,
    planner: Planner,
    /// What is known of the request's idempotency key.
    key: Key,
    /// When the call started, for hooks that ask (`RequestInfo::elapsed`); `None` when nothing can
    /// ask, so such calls read no clock for it.
    first_sent: Option<Instant>,
    check: C,
    /// Names the wrapped service to the throttle (see [`Retry`](crate::Retry)'s `origin`).
    origin: u64,
    /// What only a retry (or the throttle) needs: `None` until the first retry is planned or the
    /// throttle holds the first attempt, so a call that needs neither neither makes nor moves it.
    retry: Option<Box<Retrying<ReqB, ResB>>>,
    _response: PhantomData<fn() -> ResB>,
}

/// What a call keeps once it may retry, or once the throttle has a say in its first attempt.
struct Retrying<ReqB, ResB> {
    /// The last outcome, kept while the retry waits for the previous attempt to hand the request
    /// body back (if it never does, the call ends with this outcome), or for a check due after it
    /// (a check that says stop returns it).
    parked: Option<Result<Response<ResB>, BoxError>>,
    /// What happened so far: the records of the attempts that led to a retry, and the checks.
    history: RetryHistory,
    /// The planner's retry state.
    schedule: Schedule,
    /// The body of the next attempt, replayed before the wait so a failure is known before sleeping.
    next_body: Option<ReqB>,
    /// The wait was stretched by [`BODY_HANDBACK_GRACE`] for the body to come back.
    in_grace: bool,
    /// Whether the next attempt must ask the throttle, or is waiting in its line.
    gate: Gate,
    /// The call's place in the throttle's line, from its first ask: retries keep it.
    place: Option<Place>,
    /// Why the throttle refused the first attempt.
    refusal: Option<Refusal>,
    /// The head of the next attempt, made before it asks the throttle so that the throttle sees
    /// where it goes.
    next_head: Option<Parts>,
    /// Where the attempt in flight went, when a before-retry hook sent it elsewhere or with other
    /// headers (another key), and when the throttle let it go.
    sent_to: Option<Box<(Uri, http::HeaderMap)>>,
    sent_at: Option<Instant>,
    /// The scope's key the throttle found as it let the attempt go.
    sent_scope: Option<u64>,
    /// A check runs when the wait is over, on the parked outcome.
    check_due: bool,
    /// The requests of the check in progress.
    check_log: Option<CheckLog>,
}

/// The retry state of `slot`, made on first use.
#[inline]
fn retrying<ReqB, ResB>(slot: &mut Option<Box<Retrying<ReqB, ResB>>>) -> &mut Retrying<ReqB, ResB> {
    match slot {
        Some(retry) => retry,
        None => slot.insert(new_retrying()),
    }
}

/// A call's retry state, made once per call that retries: out of line, away from the common path.
#[cold]
#[inline(never)]
fn new_retrying<ReqB, ResB>() -> Box<Retrying<ReqB, ResB>> {
    Box::new(Retrying {
        parked: None,
        history: RetryHistory::default(),
        schedule: Schedule::default(),
        next_body: None,
        in_grace: false,
        gate: Gate::Open,
        place: None,
        refusal: None,
        next_head: None,
        sent_to: None,
        sent_at: None,
        sent_scope: None,
        check_due: false,
        check_log: None,
    })
}

/// What is known of the request's idempotency key, which is looked up only when something needs it
/// (a history reports it; the classifier reads it itself).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    /// Not looked up yet.
    Unread,
    /// The request carries none.
    Absent,
    /// The request carries the caller's.
    Caller,
    /// The layer set it before the first attempt.
    Injected,
}

/// The next attempt and the throttle.
enum Gate {
    /// Nothing to ask.
    Open,
    /// Ask when the attempt's own wait is over.
    Ask,
    /// Ask when the attempt's own wait is over, from the place in line kept for it meanwhile.
    Reserved(Waiter),
    /// In line.
    Queued(Waiter),
}

/// How long past its backoff a retry waits for the previous attempt to hand the request body back
/// (within the call's deadline). A transport lets go of it microseconds after the attempt ends; a copy
/// held longer is taken to be still sending, and the call ends with the last outcome.
const BODY_HANDBACK_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// What an attempt's outcome leads to. The outcome itself stays with the caller, which moves a
/// response no more than it must.
enum Step {
    /// A first attempt that needed no retry: its response as it is.
    PassThrough,
    /// The call ends with the outcome, for this reason; the outcome's record.
    Stop(StopReason, AttemptRecord),
    /// Wait, draining the last response's body; or keeping the outcome (`true`), for the check or
    /// while the request body is not back yet.
    Wait(Wait, bool),
}

impl<S, ReqB, ResB, C> ResponseFuture<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// Sends the first attempt on `service`, which must be ready, unless the throttle makes it wait
    /// for its turn (or refuses it).
    #[inline]
    pub(crate) fn new(
        service: S,
        policy: Arc<RetryPolicy>,
        check: C,
        request: Request<ReqB>,
        origin: u64,
    ) -> Self
    where
        S: Clone,
    {
        let (mut head, body) = request.into_parts();
        let policy = per_call::policy_for_call(policy, &mut head);
        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        // The first attempt must carry a key the policy injects; any other key is read only when a
        // history reports it, or the classifier asks.
        let key = match idempotency::injects_for(&policy.idempotency, &head.method) {
            true => match idempotency::key_for_first_attempt(&policy.idempotency_header, &mut head)
            {
                (_, true) => Key::Injected,
                (_, false) => Key::Caller,
            },
            false => Key::Unread,
        };
        let copy = body.replay();
        let deadline = policy.deadline;
        #[cfg(feature = "grpc")]
        let deadline = crate::policy::grpc::call_deadline(&policy, &head.headers, deadline);
        // The clock is read only for a policy whose timers or hooks need the start.
        let start = (deadline.is_some()
            || policy.attempt_timeout.is_some()
            || C::RUNS
            || policy.classify.is_some())
        .then(Instant::now);
        let deadline_at = start
            .zip(deadline)
            .and_then(|(now, total)| now.checked_add(total));
        let first_sent =
            start.filter(|_| deadline.is_some() || C::RUNS || policy.classify.is_some());
        let planner = Planner::new(deadline_at);
        let mut place = None;
        // While no server is throttled this is one atomic load: no clock read, no lookup.
        let entered = match &policy.throttle {
            Some(throttle) => {
                throttle.count();
                throttle.is_engaged().then(|| {
                    let now = Instant::now();
                    let sent = Sent::head(&head, origin);
                    throttle.enter(sent, &mut place, now, now, deadline_at)
                })
            }
            None => None,
        };
        let mut call = Call {
            service,
            policy,
            head,
            body: copy,
            planner,
            key,
            first_sent,
            check,
            origin,
            retry: None,
            _response: PhantomData,
        };
        if place.is_some() {
            retrying(&mut call.retry).place = place;
        }
        let state = match entered {
            None | Some(Entered::Go { .. }) => {
                if let Some(Entered::Go { sent, scope }) = entered {
                    let retry = retrying(&mut call.retry);
                    retry.sent_at = Some(sent);
                    retry.sent_scope = scope;
                }
                call.planner.start_attempt(None);
                let mut first = call.head.clone();
                // Into the copy sent, not the head kept: retries copy no extension map they replace.
                if call.policy.observe.mark_attempts {
                    first.extensions.insert(Attempt(1));
                }
                let future = call.service.call(Request::from_parts(first, body));
                let (alarm, timed) = match start {
                    Some(now) => attempt_alarm(deadline_at, call.policy.attempt_timeout, now),
                    None => (None, false),
                };
                // Built where it is returned: the common case moves nothing it need not (not even
                // an unarmed timer).
                let state = State::Calling { future, timed };
                return match alarm {
                    None => Self {
                        state,
                        timer: None,
                        call,
                    },
                    Some(at) => Self {
                        state,
                        timer: Some(sleep_until(at)),
                        call,
                    },
                };
            }
            Some(Entered::Wait(waiter, at)) => {
                // Waiting: whatever the ready service reserved (a concurrency permit, a buffer slot)
                // is given back now, and a fresh clone is made ready when the turn comes.
                call.service = call.service.clone();
                tracing::debug!(
                    http.request.method = %call.head.method,
                    server.address = call.head.uri.host(),
                    "waiting for the throttle"
                );
                metrics::throttle_hold();
                let next_head = call.head.clone();
                let retry = retrying(&mut call.retry);
                retry.gate = Gate::Queued(waiter);
                retry.next_body = Some(body);
                retry.next_head = Some(next_head);
                let state = State::Waiting {
                    until: Some(at),
                    drain: None,
                };
                return Self {
                    state,
                    timer: Some(sleep_until(wake_at(at, deadline_at))),
                    call,
                };
            }
            Some(Entered::Refused(why)) => {
                retrying(&mut call.retry).refusal = Some(why);
                State::Refused
            }
        };
        Self {
            state,
            timer: deadline_at.map(sleep_until),
            call,
        }
    }
}

impl<S, ReqB, ResB, C> Future for ResponseFuture<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    type Output = Result<Response<ResB>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future, timed } => {
                    let timed = *timed;
                    let result = match future.poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => {
                            if !poll_timer(this.timer.as_mut(), cx) {
                                return Poll::Pending;
                            }
                            if !timed {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(this.call.deadline_passed(true)));
                            }
                            Err(Box::new(AttemptTimedOut) as BoxError)
                        }
                    };
                    // The attempt's future is dropped when the state changes, once: to `Done` when
                    // the call ends, to `Waiting` when it retries.
                    match this.call.after_attempt(&result) {
                        Step::PassThrough => {
                            this.state.set(State::Done);
                            return Poll::Ready(match result {
                                Ok(response) => Ok(response),
                                // Never passed through: an error always carries a history.
                                error => this.call.finish(error, StopReason::Finished, None),
                            });
                        }
                        Step::Stop(reason, record) => {
                            this.state.set(State::Done);
                            return Poll::Ready(this.call.finish(result, reason, Some(record)));
                        }
                        Step::Wait(wait, keep) => {
                            let drain = match keep {
                                true => {
                                    retrying(&mut this.call.retry).parked = Some(result);
                                    None
                                }
                                false => result.ok().and_then(|response| {
                                    Drain::new(response.into_body(), this.call.policy.drain_limit)
                                }),
                            };
                            // The timer at the wait's end, or back at the deadline (or unarmed)
                            // until the next attempt.
                            let deadline = this.call.planner.deadline();
                            let until = (!wait.duration.is_zero())
                                .then(|| later(Instant::now(), wait.duration));
                            match until {
                                Some(end) => arm(this.timer.as_mut(), Some(wake_at(end, deadline))),
                                None if timed => arm(this.timer.as_mut(), deadline),
                                None => {}
                            }
                            this.state.set(State::Waiting { until, drain });
                        }
                    }
                }
                StateProj::Waiting { until, mut drain } => {
                    if let Some(draining) = drain.as_mut().as_pin_mut()
                        && draining.poll_drain(cx).is_ready()
                    {
                        drain.set(None);
                    }
                    match this.call.poll_next_body(cx) {
                        Poll::Ready(Ok(())) => {
                            // The body is back: a grace waited for it ends with it, and the kept
                            // outcome is only worth draining now, unless a check will need it.
                            if this.call.has_parked() && this.call.in_grace() {
                                *until = None;
                                arm(this.timer.as_mut(), this.call.planner.deadline());
                            }
                            if !this.call.check_due()
                                && let Some(Ok(response)) = this.call.take_parked()
                            {
                                let limit = this.call.policy.drain_limit;
                                drain.set(Drain::new(response.into_body(), limit));
                            }
                        }
                        Poll::Ready(Err(why)) => {
                            this.state.set(State::Done);
                            let last = this.call.take_parked();
                            return Poll::Ready(this.call.body_lost(last, why));
                        }
                        Poll::Pending => {}
                    }
                    // In the throttle's line the timer is only a fallback: those ahead wake this
                    // one when they leave. Otherwise it is the attempt's own wait.
                    let queued = this.call.is_queued();
                    if !queued && let Some(end) = *until {
                        if !poll_timer(this.timer.as_mut(), cx) {
                            return Poll::Pending;
                        }
                        // The timer fired at the wait's end, or at the deadline before it.
                        let deadline = this.call.planner.deadline();
                        if deadline.is_some_and(|deadline| deadline < end) {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(false)));
                        }
                        *until = None;
                        arm(this.timer.as_mut(), deadline);
                    }
                    if !this.call.has_next_body() {
                        // The wait is over but the previous attempt still holds the body.
                        if !this.call.in_grace() {
                            retrying(&mut this.call.retry).in_grace = true;
                            let end = later(Instant::now(), BODY_HANDBACK_GRACE);
                            *until = Some(end);
                            let deadline = this.call.planner.deadline();
                            arm(this.timer.as_mut(), Some(wake_at(end, deadline)));
                            continue;
                        }
                        this.state.set(State::Done);
                        let last = this.call.take_parked();
                        return Poll::Ready(this.call.body_lost(last, NotReplayable::StillSending));
                    }
                    // The wait is over and the body back: the check, if one is due, before the turn.
                    if let Some(future) = this.call.start_check() {
                        *until = None;
                        arm(this.timer.as_mut(), this.call.check_bound());
                        this.state.set(State::Checking { future });
                        continue;
                    }
                    // The attempt's own wait is over: now its turn at the throttle.
                    match this.call.take_turn(cx) {
                        Turn::Go => {}
                        Turn::Until(at) => {
                            // A fallback: those ahead wake this one when they leave.
                            let deadline = this.call.planner.deadline();
                            arm(this.timer.as_mut(), Some(wake_at(at, deadline)));
                            if !poll_timer(this.timer.as_mut(), cx) {
                                *until = Some(at);
                                return Poll::Pending;
                            }
                            if deadline.is_some_and(|deadline| deadline < at) {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(this.call.deadline_passed(false)));
                            }
                            *until = None;
                            arm(this.timer.as_mut(), deadline);
                            continue;
                        }
                        Turn::Refused(why) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.refused(why)));
                        }
                    }
                    // The wait is over: whatever of the body is still unread is not worth waiting for
                    // (dropped with the state).
                    to_deadline(until, this.timer.as_mut(), &this.call.planner);
                    this.state.set(State::Readying);
                }
                StateProj::Checking { future } => match future.poll(cx) {
                    Poll::Pending => {
                        if this.call.release_parked_for_check() {
                            // What the check's request waited for may be free now: look again.
                            cx.waker().wake_by_ref();
                        }
                        if !poll_timer(this.timer.as_mut(), cx) {
                            return Poll::Pending;
                        }
                        this.state.set(State::Done);
                        let deadline = this.call.planner.deadline();
                        if deadline.is_none_or(|deadline| Instant::now() < deadline) {
                            // The check's own bound, the attempt timeout, passed first.
                            this.call.check_interrupted();
                            return Poll::Ready(this.call.check_timed_out());
                        }
                        this.call.take_parked();
                        this.call.check_interrupted();
                        return Poll::Ready(Err(this.call.deadline_passed(false)));
                    }
                    Poll::Ready(verdict) => {
                        match this.call.after_check(verdict) {
                            Some(output) => {
                                this.state.set(State::Done);
                                return Poll::Ready(output);
                            }
                            // Back to the wait, which is over: the throttle's turn, then the attempt.
                            None => this.state.set(State::Waiting {
                                until: None,
                                drain: None,
                            }),
                        }
                    }
                },
                StateProj::Readying => match this.call.service.poll_ready(cx) {
                    Poll::Pending => {
                        ready!(poll_deadline(this.timer.as_mut(), cx));
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.call.deadline_passed(false)));
                    }
                    Poll::Ready(Err(error)) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.call.not_ready(error.into())));
                    }
                    Poll::Ready(Ok(())) => {
                        let future = this.call.dispatch();
                        let deadline = this.call.planner.deadline();
                        let timed = match this.call.policy.attempt_timeout {
                            Some(timeout) => {
                                match attempt_alarm(deadline, Some(timeout), Instant::now()) {
                                    (Some(at), true) => {
                                        arm(this.timer.as_mut(), Some(at));
                                        true
                                    }
                                    _ => false,
                                }
                            }
                            None => false,
                        };
                        this.state.set(State::Calling { future, timed });
                    }
                },
                StateProj::Refused => {
                    this.state.set(State::Done);
                    let why = retrying(&mut this.call.retry)
                        .refusal
                        .take()
                        .unwrap_or(Refusal::Deadline);
                    return Poll::Ready(Err(this.call.refused(why)));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// Judges a response head: the decision, the delay the server asked for, and the outcome to record.
fn judge_response(
    policy: &RetryPolicy,
    request: &RequestInfo<'_>,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
) -> (Decision, Option<crate::plan::Asked>, AttemptOutcome) {
    let outcome = Outcome::Response {
        status,
        headers,
        extensions,
    };
    #[cfg(feature = "grpc")]
    if let Some(grpc) = &policy.grpc {
        return crate::policy::grpc::judge(policy, grpc, request, status, headers, extensions);
    }
    let decision = policy.decide(request, &outcome);
    // The success path reads no header beyond what the classifier needs.
    let asked = (decision != Decision::Done || !status.is_success())
        .then(|| server_delay(headers, SystemTime::now))
        .flatten();
    (decision, asked, AttemptOutcome::Status(status))
}

/// When the call's timer fires during an attempt that starts at `now`: at the attempt's end
/// (`true`) when its timeout ends it no later than the deadline, else at the deadline; `None`
/// when neither is set (or the timeout is too long to be reached).
fn attempt_alarm(
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

/// When the call's timer is to fire for a wait that ends at `end`: then, or at the deadline when
/// that comes first.
fn wake_at(end: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(end, |deadline| end.min(deadline))
}

/// Sets the call's timer to fire at `at`, or unarms it.
fn arm(mut timer: Pin<&mut Option<Sleep>>, at: Option<Instant>) {
    match (timer.as_mut().as_pin_mut(), at) {
        (Some(sleep), Some(at)) => sleep.reset(at),
        (None, Some(at)) => timer.set(Some(sleep_until(at))),
        (_, None) => timer.set(None),
    }
}

/// Leaving the wait: the call's timer back at the deadline, if a turn's fallback had moved it.
fn to_deadline(until: &mut Option<Instant>, timer: Pin<&mut Option<Sleep>>, planner: &Planner) {
    if until.take().is_some() {
        arm(timer, planner.deadline());
    }
}

/// Whether an armed timer has fired; an unarmed one never does.
fn poll_timer(timer: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> bool {
    timer
        .as_pin_mut()
        .is_some_and(|sleep| sleep.poll(cx).is_ready())
}

/// `Ready` once the call's deadline has passed; `Pending` forever when it has none.
fn poll_deadline(deadline: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>) -> Poll<()> {
    match deadline.as_pin_mut() {
        Some(sleep) => sleep.poll(cx),
        None => Poll::Pending,
    }
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
    fn request_info(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.head.method,
            uri: &self.head.uri,
            headers: &self.head.headers,
            attempt: self.planner.attempts(),
            idempotency_header: &self.policy.idempotency_header,
            first_sent: self.first_sent,
        }
    }

    /// Judges an attempt's outcome and decides between returning it and waiting for another attempt.
    fn after_attempt(&mut self, result: &Result<Response<ResB>, BoxError>) -> Step {
        let policy = &*self.policy;
        // Whether the throttle paces the scope this outcome came from.
        let mut paced = false;
        let (decision, asked, outcome) = match result {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers();
                if let Some(throttle) = &policy.throttle {
                    // gRPC's RESOURCE_EXHAUSTED is its 429.
                    let status = match self.is_grpc() && grpc_exhausted(headers) {
                        true => StatusCode::TOO_MANY_REQUESTS,
                        false => status,
                    };
                    // What the server said is about the scope the attempt went to.
                    let (sent_to, sent_at, scope) = match &mut self.retry {
                        Some(retry) => (
                            retry.sent_to.as_deref(),
                            retry.sent_at.take(),
                            retry.sent_scope.take(),
                        ),
                        None => (None, None, None),
                    };
                    let (uri, request) = match sent_to {
                        Some((uri, headers)) => (uri, headers),
                        None => (&self.head.uri, &self.head.headers),
                    };
                    let sent = Sent {
                        uri,
                        headers: Some(request),
                        origin: self.origin,
                        scope,
                    };
                    paced =
                        throttle.observe(sent, status, headers, sent_at, policy.max_retry_after);
                }
                // The default table retries no success: without a hook (or gRPC, whose status is
                // in a header), a 2xx is final at once. A table test holds the table to that
                // (`no_success_is_ever_retried_by_the_table`).
                if status.is_success() && policy.classify.is_none() && !self.is_grpc() {
                    (Decision::Done, None, AttemptOutcome::Status(status))
                } else {
                    let request = self.request_info();
                    judge_response(policy, &request, status, headers, response.extensions())
                }
            }
            Err(error) => {
                let decision = policy.decide(&self.request_info(), &Outcome::Error(&**error));
                (
                    decision,
                    None,
                    AttemptOutcome::Error(ErrorKind::of(&**error)),
                )
            }
        };

        // A first attempt that needed no retry passes through untouched, unless the caller needs the
        // history for its key: one the layer set, or one a request that is not idempotent carried
        // (whether the server replayed it). An idempotent request's key is not even looked up.
        if decision == Decision::Done
            && self.planner.attempts() == 1
            && result.is_ok()
            && !match self.key {
                Key::Injected => true,
                _ if is_idempotent_method(&self.head.method) => false,
                Key::Caller => true,
                Key::Absent => false,
                Key::Unread => {
                    idempotency::key_of(&policy.idempotency_header, &self.head).is_some()
                }
            }
        {
            metrics::finished_at_once();
            return Step::PassThrough;
        }

        let mut record = AttemptRecord {
            outcome,
            decision,
            retry_after: asked.map(|(delay, _)| delay),
            wait: None,
        };
        // With a check, an outcome that may have taken effect is a candidate for a retry: the check
        // decides just before the request would be sent again.
        let check_due = C::RUNS && decision == Decision::Unsafe;
        let planned = match check_due {
            true => Decision::Retry(RetryClass::Transient),
            false => decision,
        };
        // The retry state is made when a retry is asked for, even one the limits then refuse.
        let next = match Planner::stops(planned) {
            Some(reason) => Next::Stop(reason),
            None => {
                let schedule = &mut retrying(&mut self.retry).schedule;
                self.planner
                    .next(schedule, policy, planned, asked, paced, Instant::now)
            }
        };
        let next = match next {
            Next::Retry(wait) => match self
                .body
                .as_ref()
                .map_err(|why| *why)
                .and_then(ReqB::replay)
            {
                Ok(body) => {
                    retrying(&mut self.retry).next_body = Some(body);
                    Next::Retry(wait)
                }
                // The previous attempt may hand the body back in a moment: the wait waits for it.
                Err(NotReplayable::StillSending) => Next::Retry(wait),
                Err(why) => {
                    retrying(&mut self.retry).schedule.cancel_retry();
                    Next::Stop(StopReason::BodyNotReplayable(why))
                }
            },
            stop => stop,
        };
        match next {
            Next::Retry(wait) => {
                // OpenTelemetry's HTTP field names where one exists: the resend to come is the
                // `attempts`-th (the first attempt is no resend).
                tracing::debug!(
                    http.request.method = %self.head.method,
                    server.address = self.head.uri.host(),
                    http.request.resend_count = self.planner.attempts(),
                    error.type = outcome.error_type(),
                    outcome = ?outcome,
                    wait_ms = u64::try_from(wait.duration.as_millis()).unwrap_or(u64::MAX),
                    reason = ?wait.reason,
                    "retrying"
                );
                record.wait = Some(wait);
                retrying(&mut self.retry).history.push(record);
                if let Decision::Retry(class) = decision {
                    metrics::retry(class, wait);
                    policy.report(RetryEvent::Retry {
                        attempt: self.planner.attempts(),
                        outcome,
                        class,
                        wait,
                    });
                }
                let retry = retrying(&mut self.retry);
                if let Some(throttle) = &policy.throttle {
                    retry.gate = Gate::Ask;
                    let now = Instant::now();
                    let place = *retry.place.get_or_insert_with(|| throttle.place(now));
                    // A throttled scope keeps the retry's place while it waits, so that those
                    // who arrive meanwhile do not take its turn when its wait ends. Not for a
                    // retry that may be held up past its wait (a check to run first, a body not
                    // handed back yet): its place would hold up the line meanwhile.
                    let on_time = !check_due && retry.next_body.is_some();
                    if on_time && throttle.is_engaged() && !wait.duration.is_zero() {
                        let sent = Sent::head(&self.head, self.origin);
                        let earliest = later(now, wait.duration);
                        if let Some(waiter) = throttle.reserve(sent, place, earliest, now) {
                            retry.gate = Gate::Reserved(waiter);
                        }
                    }
                }
                if check_due || retry.next_body.is_none() {
                    // Kept, not drained: for the check, or in case the body never comes back.
                    retry.check_due = check_due;
                    return Step::Wait(wait, true);
                }
                Step::Wait(wait, false)
            }
            Next::Stop(reason) => Step::Stop(reason, record),
        }
    }

    /// Ends the call with the last outcome, carrying the history.
    fn finish(
        &mut self,
        result: Result<Response<ResB>, BoxError>,
        reason: StopReason,
        last: Option<AttemptRecord>,
    ) -> Result<Response<ResB>, Error> {
        let mut history = self.close(reason, last);
        match result {
            Ok(mut response) => {
                if history.idempotency_key().is_some() {
                    history.set_replayed(idempotency::is_replayed(
                        &self.policy.idempotency,
                        response.headers(),
                    ));
                }
                response.extensions_mut().insert(history);
                Ok(response)
            }
            Err(error) => Err(Error::new(Some(error), history)),
        }
    }

    /// The deadline passed, during an attempt (which is canceled) or between attempts.
    fn deadline_passed(&mut self, during_attempt: bool) -> Error {
        let interrupted = during_attempt.then_some(AttemptRecord {
            outcome: AttemptOutcome::Interrupted,
            decision: Decision::Done,
            retry_after: None,
            wait: None,
        });
        Error::new(None, self.close(StopReason::Deadline, interrupted))
    }

    /// Polls for the next attempt's body while the previous attempt still holds it; `Ready(Ok)` once
    /// it is there.
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

    /// The body of the planned retry cannot be had: the call ends with the last outcome.
    fn body_lost(
        &mut self,
        last: Option<Result<Response<ResB>, BoxError>>,
        why: NotReplayable,
    ) -> Result<Response<ResB>, Error> {
        let reason = StopReason::BodyNotReplayable(why);
        match last {
            Some(result) => self.finish(result, reason, None),
            None => Err(Error::new(None, self.close(reason, None))),
        }
    }

    /// The inner service failed while getting ready for a retry.
    fn not_ready(&mut self, error: BoxError) -> Error {
        Error::new(Some(error), self.close(StopReason::Finished, None))
    }

    /// Records why the call stops, and `last`, the record of the outcome it stops with (when that
    /// is not in the history yet), and hands the history over.
    fn close(&mut self, reason: StopReason, last: Option<AttemptRecord>) -> RetryHistory {
        let mut history = match &mut self.retry {
            Some(retry) => {
                // Out of the throttle's line at once, even if this future is kept after it ends.
                retry.gate = Gate::Open;
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
            let key = idempotency::key_of(&self.policy.idempotency_header, &self.head);
            history.set_idempotency_key(key);
        }
        history.stop(reason);
        let attempts = self.planner.attempts();
        let observe = &self.policy.observe;
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
        metrics::call_ended(reason, class, attempts, waited, self.is_grpc());
        history
    }

    /// Whether the call is a gRPC one, whose metrics take gRPC's names.
    fn is_grpc(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.policy.grpc.is_some();
        #[cfg(not(feature = "grpc"))]
        false
    }

    /// Whether the next attempt is waiting in the throttle's line.
    fn is_queued(&self) -> bool {
        self.retry
            .as_ref()
            .is_some_and(|retry| matches!(retry.gate, Gate::Queued(_)))
    }

    /// Whether an outcome is kept for the check or for the body to come back.
    fn has_parked(&self) -> bool {
        self.retry
            .as_ref()
            .is_some_and(|retry| retry.parked.is_some())
    }

    /// The outcome kept, if any.
    fn take_parked(&mut self) -> Option<Result<Response<ResB>, BoxError>> {
        self.retry.as_mut().and_then(|retry| retry.parked.take())
    }

    /// Whether the wait was stretched for the body to come back.
    fn in_grace(&self) -> bool {
        self.retry.as_ref().is_some_and(|retry| retry.in_grace)
    }

    /// Whether a check runs when the wait is over.
    fn check_due(&self) -> bool {
        self.retry.as_ref().is_some_and(|retry| retry.check_due)
    }

    /// Whether the next attempt's body is ready.
    fn has_next_body(&self) -> bool {
        self.retry
            .as_ref()
            .is_some_and(|retry| retry.next_body.is_some())
    }

    /// The head of the next attempt: a copy of the first one, through the before-retry hook, with
    /// gRPC's retry headers when that is on.
    fn retry_head(&self, attempt: u32) -> Parts {
        #[allow(unused_mut)]
        let mut head = head_for_retry(
            self.policy.before_retry.as_deref(),
            &self.policy.idempotency_header,
            &self.head,
            attempt,
        );
        #[cfg(feature = "grpc")]
        if self.policy.grpc.is_some() && attempt > 1 {
            let now = Instant::now();
            let left = self
                .planner
                .deadline()
                .map(|d| d.saturating_duration_since(now));
            crate::classify::grpc::mark_retry(&mut head.headers, attempt, left);
        }
        head
    }

    /// Asks the throttle whether the next attempt may leave now.
    fn take_turn(&mut self, cx: &mut Context<'_>) -> Turn {
        let Some(retry) = &mut self.retry else {
            return Turn::Go;
        };
        if matches!(retry.gate, Gate::Open) {
            return Turn::Go;
        }
        if self.policy.throttle.is_none() {
            return Turn::Go;
        }
        let (turn, now) = match std::mem::replace(&mut retry.gate, Gate::Open) {
            Gate::Open => return Turn::Go,
            Gate::Ask => {
                self.make_next_head();
                // While no server is throttled: one atomic load, no clock read.
                let throttle = match &self.policy.throttle {
                    Some(throttle) if throttle.is_engaged() => throttle.clone(),
                    _ => return Turn::Go,
                };
                let now = Instant::now();
                let deadline = self.planner.deadline();
                let origin = self.origin;
                let retry = retrying(&mut self.retry);
                let head = retry.next_head.as_ref().expect("made above");
                let sent = Sent::head(head, origin);
                match throttle.enter(sent, &mut retry.place, now, now, deadline) {
                    Entered::Go { sent, scope } => {
                        retry.sent_at = Some(sent);
                        retry.sent_scope = scope;
                        return Turn::Go;
                    }
                    // In line: ask once more at once, so that those ahead can wake this one.
                    Entered::Wait(waiter, _) => {
                        metrics::throttle_hold();
                        (self.poll_turn(&throttle, waiter, now, cx), now)
                    }
                    Entered::Refused(why) => (Turn::Refused(why), now),
                }
            }
            Gate::Reserved(waiter) => {
                self.make_next_head();
                let Some(throttle) = self.policy.throttle.clone() else {
                    return Turn::Go;
                };
                let now = Instant::now();
                let deadline = self.planner.deadline();
                let origin = self.origin;
                let retry = retrying(&mut self.retry);
                let head = retry.next_head.as_ref().expect("made above");
                let sent = Sent::head(head, origin);
                match throttle.resume(waiter, sent, &mut retry.place, now, deadline, cx) {
                    Ok((Turn::Go, waiter)) => {
                        retry.sent_at = Some(now);
                        retry.sent_scope = Some(waiter.scope());
                        return Turn::Go;
                    }
                    Ok((Turn::Until(at), waiter)) => {
                        metrics::throttle_hold();
                        retry.gate = Gate::Queued(waiter);
                        (Turn::Until(at), now)
                    }
                    Ok((refused, _)) => (refused, now),
                    Err(Entered::Go { sent, scope }) => {
                        retry.sent_at = Some(sent);
                        retry.sent_scope = scope;
                        return Turn::Go;
                    }
                    Err(Entered::Wait(waiter, _)) => {
                        metrics::throttle_hold();
                        (self.poll_turn(&throttle, waiter, now, cx), now)
                    }
                    Err(Entered::Refused(why)) => (Turn::Refused(why), now),
                }
            }
            Gate::Queued(waiter) => {
                let Some(throttle) = self.policy.throttle.clone() else {
                    return Turn::Go;
                };
                let now = Instant::now();
                (self.poll_turn(&throttle, waiter, now, cx), now)
            }
        };
        match turn {
            // Never a timer that has already fired: the requests ahead wake this one when they leave.
            Turn::Until(at) => Turn::Until(at.max(now + Duration::from_millis(1))),
            turn => turn,
        }
    }

    /// Makes the next attempt's head, once, before it asks the throttle: the throttle sees where
    /// it goes (a before-retry hook may send it elsewhere, or with another key).
    fn make_next_head(&mut self) {
        if self
            .retry
            .as_ref()
            .is_none_or(|retry| retry.next_head.is_none())
        {
            let attempt = self.planner.attempts().saturating_add(1);
            let head = self.retry_head(attempt);
            retrying(&mut self.retry).next_head = Some(head);
        }
    }

    /// Polls the throttle's line for this call's turn, staying in line while it has not come.
    fn poll_turn(
        &mut self,
        throttle: &crate::shared::throttle::Throttle,
        waiter: Waiter,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Turn {
        match throttle.poll_turn(&waiter, now, cx) {
            Turn::Go => {
                let retry = retrying(&mut self.retry);
                retry.sent_at = Some(now);
                retry.sent_scope = Some(waiter.scope());
                Turn::Go
            }
            Turn::Until(at) => {
                retrying(&mut self.retry).gate = Gate::Queued(waiter);
                Turn::Until(at)
            }
            refused => refused,
        }
    }

    /// The throttle refused the next attempt.
    fn refused(&mut self, why: Refusal) -> Error {
        match why {
            Refusal::Deadline => Error::new(None, self.close(StopReason::Deadline, None)),
            Refusal::Shed(retry_in) => {
                let shed: BoxError = Box::new(Shed::new(retry_in));
                Error::new(Some(shed), self.close(StopReason::Shed, None))
            }
        }
    }

    /// Starts the check due after `last`, the parked outcome, if one is.
    fn start_check(&mut self) -> Option<C::Future>
    where
        S: Clone,
    {
        if !self.check_due() || !self.has_parked() {
            return None;
        }
        let body = self.body.as_ref().ok().and_then(|body| body.replay().ok());
        let elapsed = self
            .first_sent
            .map_or(Duration::ZERO, |sent| sent.elapsed());
        let log = CheckLog::default();
        let retry = retrying(&mut self.retry);
        retry.check_log = Some(log.clone());
        let last = retry.parked.as_ref()?;
        let outcome = match last {
            Ok(response) => Outcome::Response {
                status: response.status(),
                headers: response.headers(),
                extensions: response.extensions(),
            },
            Err(error) => Outcome::Error(&**error),
        };
        let request = CheckRequest {
            head: &self.head,
            body,
            outcome,
            attempt: self.planner.attempts(),
            elapsed,
        };
        let service = CheckService::new(self.service.clone(), log);
        Some(self.check.check(service, request))
    }

    /// Lets go of the kept response once the check has sent a request of its own: its unread body
    /// may hold the connection or stream that request needs (a server that allows one HTTP/2
    /// stream at a time, a limit on connections). Its status stays in the history; a check that
    /// then says stop ends the call with an error carrying it. A failure, or a response whose
    /// body has ended, holds nothing and is kept.
    fn release_parked_for_check(&mut self) -> bool {
        let Some(retry) = &mut self.retry else {
            return false;
        };
        let sent = retry.check_log.as_ref().is_some_and(CheckLog::has_sent);
        let holds = matches!(&retry.parked, Some(Ok(response)) if !response.body().is_end_stream());
        if sent && holds {
            retry.parked = None;
        }
        sent && holds
    }

    /// Records what the check answered and acts on it: `None` to retry, or the call's output.
    fn after_check(
        &mut self,
        verdict: CheckVerdict<ResB>,
    ) -> Option<Result<Response<ResB>, Error>> {
        let retry = retrying(&mut self.retry);
        retry.check_due = false;
        let last = retry.parked.take();
        let answer = match &verdict {
            CheckVerdict::Retry => CheckAnswer::Retry,
            CheckVerdict::Stop => CheckAnswer::Stop,
            CheckVerdict::Respond(response) => CheckAnswer::Respond(response.status()),
        };
        self.record_check(answer);
        match verdict {
            CheckVerdict::Retry => None,
            CheckVerdict::Stop => Some(self.stop_after_check(last, StopReason::CheckStopped)),
            CheckVerdict::Respond(response) => {
                Some(self.finish(Ok(response), StopReason::CheckAnswered, None))
            }
        }
    }

    /// When a check must have answered: the deadline, or the attempt timeout from now when that
    /// is sooner (a check is bounded as an attempt is).
    fn check_bound(&self) -> Option<Instant> {
        let timeout = self
            .policy
            .attempt_timeout
            .map(|timeout| later(Instant::now(), timeout));
        match (self.planner.deadline(), timeout) {
            (Some(deadline), Some(timeout)) => Some(deadline.min(timeout)),
            (deadline, timeout) => deadline.or(timeout),
        }
    }

    /// The check did not answer within its bound: the call ends as if it had said stop.
    fn check_timed_out(&mut self) -> Result<Response<ResB>, Error> {
        let last = retrying(&mut self.retry).parked.take();
        self.stop_after_check(last, StopReason::CheckTimedOut)
    }

    /// Ends the call after a check: with the kept outcome, or, when it was let go of while the
    /// check waited, with an error whose history holds it.
    fn stop_after_check(
        &mut self,
        last: Option<Result<Response<ResB>, BoxError>>,
        reason: StopReason,
    ) -> Result<Response<ResB>, Error> {
        match last {
            Some(last) => self.finish(last, reason, None),
            None => Err(Error::new(None, self.close(reason, None))),
        }
    }

    /// The deadline passed while the check ran.
    fn check_interrupted(&mut self) {
        retrying(&mut self.retry).check_due = false;
        self.record_check(CheckAnswer::Interrupted);
    }

    fn record_check(&mut self, answer: CheckAnswer) {
        let requests = retrying(&mut self.retry)
            .check_log
            .take()
            .map(|log| log.take())
            .unwrap_or_default();
        let after_attempt = self.planner.attempts();
        retrying(&mut self.retry).history.push_check(CheckRecord {
            after_attempt,
            requests,
            answer,
        });
    }

    /// Sends the next attempt on the (ready) service.
    fn dispatch(&mut self) -> S::Future {
        let retry = retrying(&mut self.retry);
        let body = retry
            .next_body
            .take()
            .expect("the next body is prepared before every wait");
        retry.in_grace = false;
        let next_head = retry.next_head.take();
        self.planner.start_attempt(Some(&mut retry.schedule));
        let attempt = self.planner.attempts();
        let mut head = match next_head {
            Some(head) => head,
            None => self.retry_head(attempt),
        };
        if self.policy.observe.mark_attempts {
            head.extensions.insert(Attempt(attempt));
        }
        // Where the attempt went, for the throttle to learn from its answer: kept only when a
        // before-retry hook sent it elsewhere than the first attempt.
        if self.policy.throttle.is_some() {
            let elsewhere = self.policy.before_retry.is_some()
                && (head.uri != self.head.uri || head.headers != self.head.headers);
            retrying(&mut self.retry).sent_to =
                elsewhere.then(|| Box::new((head.uri.clone(), head.headers.clone())));
        }
        self.service.call(Request::from_parts(head, body))
    }
}

/// Whether a gRPC response's status (in its headers: a trailers-only answer) is
/// `RESOURCE_EXHAUSTED`, gRPC's 429.
fn grpc_exhausted(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == b"8")
}
