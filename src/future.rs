//! The response future of [`Retry`](crate::Retry): runs attempts, waits between them, and returns the
//! final response or error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use http::request::Parts;
use http::{Request, Response, Uri};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::{sleep, sleep_until, Instant, Sleep};
use tower_service::Service;

use crate::before_retry::head_for_retry;
use crate::body::{NotReplayable, ReplayableBody};
use crate::classify::{AttemptTimedOut, Decision, ErrorKind, Outcome, RequestInfo};
use crate::drain::Drain;
use crate::error::{BoxError, Error};
use crate::history::{AttemptOutcome, AttemptRecord, RetryHistory, StopReason, Wait};
use crate::idempotency;
use crate::plan::{Next, Planner};
use crate::policy::RetryPolicy;
use crate::rate_limit::server_delay;
use crate::throttle::{Entered, Place, Refusal, Shed, Turn, Waiter};

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
    pub struct ResponseFuture<S, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S::Future>,
        // The per-attempt timeout while an attempt is in flight, the backoff while waiting.
        #[pin]
        timer: Option<Sleep>,
        #[pin]
        deadline: Option<Sleep>,
        drain: Option<Drain<ResB>>,
        call: Call<S, ReqB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Waiting,
        Readying,
        // The throttle refused the first attempt: the call ends at the first poll.
        Refused,
        Done,
    }
}

/// Everything a call keeps between attempts.
struct Call<S, ReqB> {
    service: S,
    policy: Arc<RetryPolicy>,
    /// The request head of the first attempt, idempotency key included; each retry sends a copy.
    head: Parts,
    /// The body copy kept for later attempts, or why there is none.
    body: Result<ReqB, NotReplayable>,
    /// The body of the next attempt, replayed before the wait so a failure is known before sleeping.
    next_body: Option<ReqB>,
    planner: Planner,
    history: RetryHistory,
    /// Whether the next attempt must ask the throttle, or is waiting in its line.
    gate: Gate,
    /// The call's place in the throttle's line, from its first ask: retries keep it.
    place: Option<Place>,
    /// Why the throttle refused the first attempt.
    refusal: Option<Refusal>,
    /// The head of the next attempt, made before it asks the throttle so that the throttle sees
    /// where it goes.
    next_head: Option<Parts>,
    /// Where the attempt in flight went (a retry may go elsewhere), and when the throttle let it go.
    sent_to: Option<Uri>,
    sent_at: Option<Instant>,
}

/// The next attempt and the throttle.
enum Gate {
    /// Nothing to ask.
    Open,
    /// Ask when the attempt's own wait is over.
    Ask,
    /// In line.
    Queued(Waiter),
}

/// What an attempt's outcome leads to.
enum Step<T, ResB> {
    Return(T),
    Wait(Wait, Option<Drain<ResB>>),
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
{
    /// Sends the first attempt on `service`, which must be ready, unless the throttle makes it wait
    /// for its turn (or refuses it).
    pub(crate) fn new(service: S, policy: Arc<RetryPolicy>, request: Request<ReqB>) -> Self
    where
        S: Clone,
    {
        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        let (mut head, body) = request.into_parts();
        let key = idempotency::key_for_first_attempt(&policy, &mut head);
        let mut history = RetryHistory::default();
        history.set_idempotency_key(key);
        let copy = body.replay();
        let deadline = policy.deadline.map(sleep);
        let deadline_at = deadline.as_ref().map(Sleep::deadline);
        let planner = Planner::new(deadline_at);
        let mut place = None;
        // While no server is throttled this is one atomic load: no clock read, no lookup.
        let entered = match &policy.throttle {
            Some(throttle) if throttle.is_engaged() => {
                let now = Instant::now();
                Some(throttle.enter(&head.uri, &mut place, now, now, deadline_at))
            }
            _ => None,
        };
        let mut call = Call {
            service,
            policy,
            head,
            body: copy,
            next_body: None,
            planner,
            history,
            gate: Gate::Open,
            place,
            refusal: None,
            next_head: None,
            sent_to: None,
            sent_at: None,
        };
        let (state, timer) = match entered {
            None | Some(Entered::Go { .. }) => {
                if let Some(Entered::Go { sent }) = entered {
                    call.sent_at = Some(sent);
                }
                call.planner.start_attempt();
                let future = call
                    .service
                    .call(Request::from_parts(call.head.clone(), body));
                let timer = call.policy.attempt_timeout.map(sleep);
                (State::Calling { future }, timer)
            }
            Some(Entered::Wait(waiter, at)) => {
                // Waiting: whatever the ready service reserved (a concurrency permit, a buffer slot)
                // is given back now, and a fresh clone is made ready when the turn comes.
                call.service = call.service.clone();
                tracing::debug!(method = %call.head.method, host = call.head.uri.host(), "waiting for the throttle");
                call.gate = Gate::Queued(waiter);
                call.next_body = Some(body);
                call.next_head = Some(call.head.clone());
                (State::Waiting, Some(sleep_until(at)))
            }
            Some(Entered::Refused(why)) => {
                call.refusal = Some(why);
                (State::Refused, None)
            }
        };
        Self {
            state,
            timer,
            deadline,
            drain: None,
            call,
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
{
    type Output = Result<Response<ResB>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = match future.poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending if poll_timer(this.timer.as_mut(), cx) => {
                            Err(Box::new(AttemptTimedOut) as BoxError)
                        }
                        Poll::Pending => {
                            ready!(poll_deadline(this.deadline.as_mut(), cx));
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(true)));
                        }
                    };
                    this.state.set(State::Done);
                    this.timer.set(None);
                    match this.call.after_attempt(result) {
                        Step::Return(output) => return Poll::Ready(output),
                        Step::Wait(wait, drain) => {
                            *this.drain = drain;
                            if !wait.duration.is_zero() {
                                this.timer.set(Some(sleep(wait.duration)));
                            }
                            this.state.set(State::Waiting);
                        }
                    }
                }
                StateProj::Waiting => {
                    if let Some(drain) = this.drain.as_mut() {
                        if drain.poll_drain(cx).is_ready() {
                            *this.drain = None;
                        }
                    }
                    // In the throttle's line the timer is only a fallback: those ahead wake this
                    // one when they leave. Otherwise it is the attempt's own wait.
                    let queued = this.call.is_queued();
                    if !queued && this.timer.is_some() && !poll_timer(this.timer.as_mut(), cx) {
                        ready!(poll_deadline(this.deadline.as_mut(), cx));
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.call.deadline_passed(false)));
                    }
                    // The attempt's own wait is over: now its turn at the throttle.
                    match this.call.take_turn(cx) {
                        Turn::Go => {}
                        Turn::Until(at) => {
                            this.timer.set(Some(sleep_until(at)));
                            if poll_timer(this.timer.as_mut(), cx) {
                                continue;
                            }
                            ready!(poll_deadline(this.deadline.as_mut(), cx));
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(false)));
                        }
                        Turn::Refused(why) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.refused(why)));
                        }
                    }
                    // The wait is over: whatever of the body is still unread is not worth waiting for.
                    *this.drain = None;
                    this.timer.set(None);
                    this.state.set(State::Readying);
                }
                StateProj::Readying => match this.call.service.poll_ready(cx) {
                    Poll::Pending => {
                        ready!(poll_deadline(this.deadline.as_mut(), cx));
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.call.deadline_passed(false)));
                    }
                    Poll::Ready(Err(error)) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(this.call.not_ready(error.into())));
                    }
                    Poll::Ready(Ok(())) => {
                        let future = this.call.dispatch();
                        let timeout = this.call.policy.attempt_timeout;
                        this.timer.set(timeout.map(sleep));
                        this.state.set(State::Calling { future });
                    }
                },
                StateProj::Refused => {
                    this.state.set(State::Done);
                    let why = this.call.refusal.take().unwrap_or(Refusal::Deadline);
                    return Poll::Ready(Err(this.call.refused(why)));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
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

impl<S, ReqB, ResB> Call<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
{
    /// Judges an attempt's outcome and decides between returning it and waiting for another attempt.
    fn after_attempt(
        &mut self,
        result: Result<Response<ResB>, BoxError>,
    ) -> Step<Result<Response<ResB>, Error>, ResB> {
        let policy = &*self.policy;
        let request = RequestInfo {
            method: &self.head.method,
            uri: &self.head.uri,
            headers: &self.head.headers,
            attempt: self.planner.attempts(),
            idempotency_header: &policy.idempotency_header,
        };
        let (decision, asked, outcome) = match &result {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers();
                if let Some(throttle) = &policy.throttle {
                    // What the server said is about the authority the attempt went to.
                    let uri = self.sent_to.as_ref().unwrap_or(&self.head.uri);
                    let sent = self.sent_at.take();
                    throttle.observe(uri, status, headers, sent, policy.max_retry_after);
                }
                let decision = policy.decide(&request, &Outcome::Response { status, headers });
                // The success path reads no header beyond what the classifier needs.
                let asked = (decision != Decision::Done || !status.is_success())
                    .then(|| server_delay(headers, SystemTime::now()))
                    .flatten();
                (decision, asked, AttemptOutcome::Status(status))
            }
            Err(error) => {
                let decision = policy.decide(&request, &Outcome::Error(&**error));
                (
                    decision,
                    None,
                    AttemptOutcome::Error(ErrorKind::of(&**error)),
                )
            }
        };

        // A first attempt that needed no retry passes through untouched, unless the caller needs the
        // history for the key it carried.
        if decision == Decision::Done
            && self.planner.attempts() == 1
            && self.history.idempotency_key().is_none()
        {
            if let Ok(response) = result {
                return Step::Return(Ok(response));
            }
        }

        self.history.push(AttemptRecord {
            outcome,
            decision,
            retry_after: asked.map(|(delay, _)| delay),
            wait: None,
        });
        let now = Instant::now();
        let next = match self.planner.next(policy, decision, asked, now) {
            Next::Retry(wait) => match self
                .body
                .as_ref()
                .map_err(|why| *why)
                .and_then(ReqB::replay)
            {
                Ok(body) => {
                    self.next_body = Some(body);
                    Next::Retry(wait)
                }
                Err(why) => Next::Stop(StopReason::BodyNotReplayable(why)),
            },
            stop => stop,
        };
        match next {
            Next::Retry(wait) => {
                tracing::debug!(
                    method = %self.head.method,
                    host = self.head.uri.host(),
                    attempt = self.planner.attempts(),
                    outcome = ?outcome,
                    wait_ms = wait.duration.as_millis() as u64,
                    reason = ?wait.reason,
                    "retrying"
                );
                self.history.set_wait(wait);
                if let Some(throttle) = &policy.throttle {
                    self.gate = Gate::Ask;
                    if self.place.is_none() {
                        self.place = Some(throttle.place(now));
                    }
                }
                let drain = result
                    .ok()
                    .and_then(|response| Drain::new(response.into_body(), policy.drain_limit));
                Step::Wait(wait, drain)
            }
            Next::Stop(reason) => Step::Return(self.finish(result, reason)),
        }
    }

    /// Ends the call with the last outcome, carrying the history.
    fn finish(
        &mut self,
        result: Result<Response<ResB>, BoxError>,
        reason: StopReason,
    ) -> Result<Response<ResB>, Error> {
        let mut history = self.close(reason);
        match result {
            Ok(mut response) => {
                if history.idempotency_key().is_some() {
                    history
                        .set_replayed(idempotency::is_replayed(&self.policy, response.headers()));
                }
                response.extensions_mut().insert(history);
                Ok(response)
            }
            Err(error) => Err(Error::new(Some(error), history)),
        }
    }

    /// The deadline passed, during an attempt (which is canceled) or between attempts.
    fn deadline_passed(&mut self, during_attempt: bool) -> Error {
        if during_attempt {
            self.history.push(AttemptRecord {
                outcome: AttemptOutcome::Interrupted,
                decision: Decision::Done,
                retry_after: None,
                wait: None,
            });
        }
        Error::new(None, self.close(StopReason::Deadline))
    }

    /// The inner service failed while getting ready for a retry.
    fn not_ready(&mut self, error: BoxError) -> Error {
        Error::new(Some(error), self.close(StopReason::Finished))
    }

    /// Records why the call stops and hands the history over.
    fn close(&mut self, reason: StopReason) -> RetryHistory {
        // Out of the throttle's line at once, even if this future is kept after it ends.
        self.gate = Gate::Open;
        self.history.stop(reason);
        if reason.is_gave_up() {
            tracing::warn!(
                method = %self.head.method,
                host = self.head.uri.host(),
                attempts = self.planner.attempts(),
                reason = %reason,
                "not retrying"
            );
        }
        std::mem::take(&mut self.history)
    }

    /// Whether the next attempt is waiting in the throttle's line.
    fn is_queued(&self) -> bool {
        matches!(self.gate, Gate::Queued(_))
    }

    /// Asks the throttle whether the next attempt may leave now.
    fn take_turn(&mut self, cx: &mut Context<'_>) -> Turn {
        let Some(throttle) = self.policy.throttle.as_ref() else {
            return Turn::Go;
        };
        let now = Instant::now();
        let turn = match std::mem::replace(&mut self.gate, Gate::Open) {
            Gate::Open => return Turn::Go,
            Gate::Ask => {
                let attempt = self.planner.attempts().saturating_add(1);
                let head = self
                    .next_head
                    .get_or_insert_with(|| head_for_retry(&self.policy, &self.head, attempt));
                if !throttle.is_engaged() {
                    return Turn::Go;
                }
                let deadline = self.planner.deadline();
                match throttle.enter(&head.uri, &mut self.place, now, now, deadline) {
                    Entered::Go { sent } => {
                        self.sent_at = Some(sent);
                        return Turn::Go;
                    }
                    // In line: ask once more at once, so that those ahead can wake this one.
                    Entered::Wait(waiter, _) => match throttle.poll_turn(&waiter, now, cx) {
                        Turn::Go => {
                            self.sent_at = Some(now);
                            return Turn::Go;
                        }
                        Turn::Until(at) => {
                            self.gate = Gate::Queued(waiter);
                            Turn::Until(at)
                        }
                        refused => refused,
                    },
                    Entered::Refused(why) => Turn::Refused(why),
                }
            }
            Gate::Queued(waiter) => match throttle.poll_turn(&waiter, now, cx) {
                Turn::Go => {
                    self.sent_at = Some(now);
                    return Turn::Go;
                }
                Turn::Until(at) => {
                    self.gate = Gate::Queued(waiter);
                    Turn::Until(at)
                }
                refused => refused,
            },
        };
        match turn {
            // Never a timer that has already fired: the requests ahead wake this one when they leave.
            Turn::Until(at) => Turn::Until(at.max(now + Duration::from_millis(1))),
            turn => turn,
        }
    }

    /// The throttle refused the next attempt.
    fn refused(&mut self, why: Refusal) -> Error {
        match why {
            Refusal::Deadline => Error::new(None, self.close(StopReason::Deadline)),
            Refusal::Shed(retry_in) => {
                let shed: BoxError = Box::new(Shed::new(retry_in));
                Error::new(Some(shed), self.close(StopReason::Shed))
            }
        }
    }

    /// Sends the next attempt on the (ready) service.
    fn dispatch(&mut self) -> S::Future {
        let body = self
            .next_body
            .take()
            .expect("the next body is prepared before every wait");
        self.planner.start_attempt();
        let attempt = self.planner.attempts();
        let head = self
            .next_head
            .take()
            .unwrap_or_else(|| head_for_retry(&self.policy, &self.head, attempt));
        if self.policy.throttle.is_some() {
            self.sent_to = Some(head.uri.clone());
        }
        self.service.call(Request::from_parts(head, body))
    }
}
