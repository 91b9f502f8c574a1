//! An attempt's outcome: what the throttle learns from it, how it is classified, and whether the
//! call returns it or retries.

use std::time::{Duration, SystemTime};

use http::{Request, Response, StatusCode};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::{NotReplayable, ReplayableBody, ResponseBody};
use crate::classify::{
    is_idempotent_method, BufferedBytes, Decision, ErrorKind, Outcome, RequestInfo, RetryClass,
};
use crate::plan::{Asked, Next, Planner};
use crate::policy::check::CheckBeforeRetry;
use crate::policy::idempotency;
use crate::policy::retry_policy::RetryPolicy;
use crate::report::history::{AttemptOutcome, AttemptRecord, StopReason};
use crate::report::metrics;
use crate::report::on_retry::RetryEvent;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{later, Sent, Waiter};
use crate::wait::rate_limit::server_delay;
use crate::wait::{Wait, WaitReason};
use crate::BoxError;

use super::call::{retrying, Call, Key};
use super::state::Attempted;

/// What an attempt's outcome leads to. The outcome itself stays with the caller, which moves a
/// response no more than it must.
pub(super) enum Step {
    /// A first attempt that needed no retry: its response as it is.
    PassThrough,
    /// The call ends with the outcome, for this reason; the outcome's record.
    Stop(StopReason, AttemptRecord),
    /// Another attempt, after a pause.
    Retry(Retry),
}

/// A planned retry: how long it waits, what becomes of the outcome it follows, and the place kept
/// for it in the throttle's line meanwhile.
pub(super) struct Retry {
    pub(super) wait: Wait,
    pub(super) keep: Keep,
    pub(super) reserved: Option<Waiter>,
}

/// What the layer did with an attempt's body before it was judged.
#[derive(Clone, Copy)]
pub(super) struct BodySeen {
    /// Its bytes are in the response's extensions, for the classifier.
    shown: bool,
    /// It was longer than the limit: passed on as it streams.
    streamed: bool,
}

/// What becomes of the outcome a retry follows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Its body is drained during the wait (a response), or it is dropped (an error).
    Drain,
    /// Kept until the request body comes back from the attempt: if it never does, the call ends
    /// with this outcome.
    UntilBodyBack,
    /// Kept for the check that runs before the retry.
    ForCheck,
}

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// Judges an attempt's outcome and decides between returning it and waiting for another attempt.
    #[inline]
    pub(super) fn after_attempt(&mut self, result: &Attempted<ResB>) -> Step {
        let (record, asked, paced) = self.judge(result);
        if record.decision == Decision::Done
            && self.planner.attempts() == 1
            && result.is_ok()
            && !self.needs_history()
        {
            metrics::finished_at_once();
            return Step::PassThrough;
        }
        self.plan(record, asked, paced)
    }

    /// Judges the outcome of a race's attempt while another attempt is still in flight. One worth a
    /// retry ends nothing (A6's non-fatal status): it is recorded, with no wait, and `None` lets a
    /// hedge leave at once. No retry is planned for it, so none is counted, reported to the hook or
    /// the metrics, or drawn from the retry budget: the call goes on with the attempts in flight,
    /// and a retry is planned only when the last of them fails. Any other outcome is planned as an
    /// attempt alone's would be.
    pub(super) fn after_attempt_in_race(&mut self, result: &Attempted<ResB>) -> Option<Step> {
        let (record, asked, paced) = self.judge(result);
        if !matches!(record.decision, Decision::Retry(_)) {
            return Some(self.plan(record, asked, paced));
        }
        retrying(&mut self.retry).history.push(record);
        None
    }

    /// An attempt's outcome judged: how it was classified, the delay it asked for, and whether the
    /// throttle paces its scope (taught by it, as the route is told of a delay).
    #[inline]
    fn judge(&mut self, result: &Attempted<ResB>) -> (AttemptRecord, Option<Asked>, bool) {
        // Whether the throttle paces the scope this outcome came from.
        let mut paced = false;
        let (decision, asked, outcome) = match result {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers();
                if self.policy.paced_by().is_some() {
                    paced = self.teach_throttle(status, headers);
                }
                // The default table retries no success: without a hook (or gRPC, whose status is
                // in a header), a 2xx is final at once. A table test holds the table to that
                // (`no_success_is_ever_retried_by_the_table`).
                if status.is_success() && !self.policy.has_classifier() && !self.policy.is_grpc() {
                    (Decision::Done, None, AttemptOutcome::Status(status))
                } else {
                    let request = self.request_info();
                    judge_response(&self.policy, &request, response)
                }
            }
            Err(error) => {
                let outcome = Outcome::Error(&**error);
                let decision = self.policy.decide(&self.request_info(), &outcome);
                let kind = ErrorKind::of(&**error);
                (decision, None, AttemptOutcome::Error(kind))
            }
        };
        if let Some((delay, reason)) = asked
            && told_to_wait(result, reason, delay)
        {
            self.tell_route(delay);
        }
        let record = AttemptRecord {
            outcome,
            decision,
            retry_after: asked.map(|(delay, _)| delay),
            wait: None,
        };
        (record, asked, paced)
    }

    /// Before an attempt whose body was read is judged ([`after_attempt`](Self::after_attempt)):
    /// the bytes of a body read whole are shown to the classifier ([`Outcome::body`], in the
    /// response's extensions while it runs). Out of line: the path that reads no body does not
    /// carry it.
    #[inline(never)]
    pub(super) fn show_body(&self, result: &mut Attempted<ResB>) -> BodySeen {
        let streamed = result
            .as_ref()
            .is_ok_and(|response| response.body().is_streamed());
        let mut shown = false;
        if let Ok(response) = result
            && self.policy.has_classifier()
            && let Some(bytes) = response.body().contiguous()
        {
            response.extensions_mut().insert(BufferedBytes(bytes));
            shown = true;
        }
        BodySeen { shown, streamed }
    }

    /// After an attempt whose body was read was judged: the bytes shown are taken back, and a body
    /// passed on over the limit that no retry follows ends the call with [`StopReason::Streamed`]
    /// and a history that says so.
    #[inline(never)]
    pub(super) fn after_judging(
        &mut self,
        step: &mut Step,
        result: &mut Attempted<ResB>,
        read: BodySeen,
    ) {
        if read.shown
            && let Ok(response) = result
        {
            response.extensions_mut().remove::<BufferedBytes>();
        }
        if !read.streamed {
            return;
        }
        match (&mut *step, &*result) {
            (Step::PassThrough, Ok(response)) => {
                let record = AttemptRecord {
                    outcome: AttemptOutcome::Status(response.status()),
                    decision: Decision::Done,
                    retry_after: None,
                    wait: None,
                };
                *step = Step::Stop(StopReason::Streamed, record);
            }
            (Step::Stop(reason @ StopReason::Finished, _), _) => *reason = StopReason::Streamed,
            _ => {}
        }
    }

    /// Whether a first attempt that needs no retry must still carry a history: when the caller
    /// needs it for its key, one the layer set, or one a request that is not idempotent carried
    /// (whether the server replayed it). An idempotent request's key is not even looked up.
    #[inline]
    fn needs_history(&self) -> bool {
        match self.key {
            Key::Injected => true,
            _ if is_idempotent_method(&self.head.method) => false,
            Key::Caller => true,
            Key::Absent => false,
            Key::Unread => idempotency::key_of(&self.policy.keys().header, &self.head).is_some(),
        }
    }

    /// Tells the throttle what the server answered, about the scope the attempt went to; `true`
    /// when the throttle paces that scope.
    #[inline]
    fn teach_throttle(&mut self, status: StatusCode, headers: &http::HeaderMap) -> bool {
        let Some(throttle) = self.policy.paced_by() else {
            return false;
        };
        // gRPC's RESOURCE_EXHAUSTED is its 429.
        let status = match self.policy.is_grpc() && grpc_exhausted(headers) {
            true => StatusCode::TOO_MANY_REQUESTS,
            false => status,
        };
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
            method: Some(&self.head.method),
            headers: Some(request),
            origin: self.origin,
            scope,
        };
        throttle.observe(sent, status, headers, sent_at, self.policy.longest_asked())
    }

    /// Tells the throttle this call was told to wait `delay` for its route: several calls told so
    /// hold the route.
    #[cold]
    #[inline(never)]
    fn tell_route(&mut self, delay: Duration) {
        let Some(throttle) = self.policy.paced_by() else {
            return;
        };
        let delay = delay.min(self.policy.longest_asked());
        let retry = retrying(&mut self.retry);
        let call = *retry.number.get_or_insert_with(|| throttle.call_number());
        let (uri, headers) = match retry.sent_to.as_deref() {
            Some((uri, headers)) => (uri, headers),
            None => (&self.head.uri, &self.head.headers),
        };
        let sent = Sent {
            uri,
            method: Some(&self.head.method),
            headers: Some(headers),
            origin: self.origin,
            scope: None,
        };
        throttle.told(sent, call, delay);
    }

    /// Plans what follows an outcome that does not pass through: a retry (its body replayed now,
    /// its place in line kept) or the end of the call.
    #[inline]
    fn plan(&mut self, mut record: AttemptRecord, asked: Option<Asked>, paced: bool) -> Step {
        let decision = record.decision;
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
                    .next(schedule, &*self.policy, planned, asked, paced, Instant::now)
            }
        };
        let wait = match next {
            Next::Retry(wait) => wait,
            Next::Stop(reason) => return Step::Stop(reason, record),
        };
        match self
            .body
            .as_ref()
            .map_err(|why| *why)
            .and_then(ReqB::replay)
        {
            Ok(body) => retrying(&mut self.retry).next_body = Some(body),
            // The previous attempt may hand the body back in a moment: the pause waits for it.
            Err(NotReplayable::StillSending) => {}
            Err(why) => {
                retrying(&mut self.retry).schedule.cancel_retry();
                return Step::Stop(StopReason::BodyNotReplayable(why), record);
            }
        }
        let outcome = record.outcome;
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
            self.policy.report(RetryEvent::Retry {
                attempt: self.planner.attempts(),
                outcome,
                class,
                wait,
            });
        }
        let keep = match (check_due, self.has_next_body()) {
            (true, _) => Keep::ForCheck,
            (false, false) => Keep::UntilBodyBack,
            (false, true) => Keep::Drain,
        };
        let reserved = self.reserve(wait, keep != Keep::ForCheck);
        Step::Retry(Retry {
            wait,
            keep,
            reserved,
        })
    }

    /// Takes the call's place in the throttle's line for a retry, and keeps it during the retry's
    /// wait when the scope is throttled, so that those who arrive meanwhile do not take its turn
    /// when the wait ends. Not for a retry that may be held up long past its wait (`on_time`
    /// false: a check to run first): its place would hold up the line. A body not handed back yet
    /// holds it up at most the hand-back's grace (100 ms), and a transport hands it back
    /// microseconds after the attempt ends: that retry keeps its place.
    #[inline]
    fn reserve(&mut self, wait: Wait, on_time: bool) -> Option<Waiter> {
        let throttle = self.policy.paced_by()?;
        let now = Instant::now();
        let retry = retrying(&mut self.retry);
        let place = *retry.place.get_or_insert_with(|| throttle.place(now));
        if !on_time || !throttle.is_engaged() || wait.duration.is_zero() {
            return None;
        }
        let sent = Sent::head(&self.head, self.origin);
        throttle.reserve(sent, place, later(now, wait.duration), now)
    }
}

/// Judges a response: the decision, the delay the server asked for, and the outcome to record.
#[inline]
fn judge_response<ResB: Body>(
    policy: &RetryPolicy,
    request: &RequestInfo<'_>,
    response: &Response<ResponseBody<ResB>>,
) -> (Decision, Option<Asked>, AttemptOutcome) {
    let (status, headers) = (response.status(), response.headers());
    let extensions = response.extensions();
    #[cfg(feature = "grpc")]
    if let Some(grpc) = policy.grpc_policy() {
        let trailers = response.body().trailers();
        return crate::policy::grpc::judge(
            policy, grpc, request, status, headers, extensions, trailers,
        );
    }
    let outcome = Outcome::Response {
        status,
        headers,
        extensions,
    };
    let decision = policy.decide(request, &outcome);
    // The success path reads no header beyond what the classifier needs.
    let asked = (decision != Decision::Done || !status.is_success())
        .then(|| server_delay(headers, SystemTime::now))
        .flatten();
    (decision, asked, AttemptOutcome::Status(status))
}

/// Whether an outcome told its call, not its scope, to wait: a 503's `Retry-After` or a gRPC
/// pushback of at least a millisecond (a 429's time holds the whole scope, by the throttle).
#[inline]
fn told_to_wait<ResB: Body>(result: &Attempted<ResB>, reason: WaitReason, delay: Duration) -> bool {
    let told = match reason {
        WaitReason::GrpcPushback => true,
        WaitReason::RetryAfter => result
            .as_ref()
            .is_ok_and(|response| response.status() == StatusCode::SERVICE_UNAVAILABLE),
        _ => false,
    };
    told && delay >= Duration::from_millis(1)
}

/// Whether a gRPC response's status (in its headers: a trailers-only answer) is
/// `RESOURCE_EXHAUSTED`, gRPC's 429.
#[inline]
fn grpc_exhausted(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == b"8")
}
