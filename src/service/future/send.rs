//! Sending an attempt: its head, made in one place for the first attempt and every retry, and the
//! call on the inner service.

use std::pin::Pin;

use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::body::ReplayableBody;
use crate::policy::before_retry::head_for_retry;
use crate::policy::check::CheckBeforeRetry;
use crate::report::attempt::Attempt;
use crate::service::check_service::CheckService;
use crate::BoxError;

use super::call::{retrying, Call};
use super::timer;

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// The head of attempt number `attempt`: the first attempt's as the caller made it; a retry's
    /// a copy through the before-retry hook, with gRPC's retry headers when that is on. Marked
    /// with its number when the policy asks (in the copy sent, not the head kept: retries copy no
    /// extension map they replace).
    #[inline]
    pub(super) fn head_for(&self, attempt: u32) -> Parts {
        let mut head = match attempt {
            1 => self.head.clone(),
            _ => self.retry_head(attempt),
        };
        if self.policy.observers().mark_attempts {
            head.extensions.insert(Attempt(attempt));
        }
        head
    }

    #[inline]
    fn retry_head(&self, attempt: u32) -> Parts {
        #[allow(unused_mut)]
        let mut head = head_for_retry(
            self.policy.retry_hook(),
            &self.policy.keys().header,
            &self.head,
            attempt,
        );
        #[cfg(feature = "grpc")]
        if self.policy.is_grpc() {
            let left = self
                .planner
                .deadline()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            crate::classify::grpc::mark_retry(&mut head.headers, attempt, left);
        }
        head
    }

    /// Makes the next attempt's head, once.
    #[inline]
    pub(super) fn make_next_head(&mut self) {
        if self
            .retry
            .as_ref()
            .is_none_or(|retry| retry.next_head.is_none())
        {
            let head = self.head_for(self.planner.attempts().saturating_add(1));
            retrying(&mut self.retry).next_head = Some(head);
        }
    }

    /// Sends the next attempt on the (ready) service, and arms the timer at its timeout when that
    /// comes before the deadline (`true`).
    #[inline]
    pub(super) fn send_next(&mut self, timer: Pin<&mut Option<Sleep>>) -> (S::Future, bool) {
        let attempt = self.planner.attempts().saturating_add(1);
        // Made already when the attempt asked the throttle for its turn.
        let head = match self.retry.as_mut().and_then(|retry| retry.next_head.take()) {
            Some(head) => head,
            None => self.head_for(attempt),
        };
        let retry = retrying(&mut self.retry);
        let body = retry
            .next_body
            .take()
            .expect("the next body is prepared before every pause");
        self.planner.start_attempt(Some(&mut retry.schedule));
        // Where the attempt went, for the throttle to learn from its answer: kept only when a
        // before-retry hook sent it elsewhere than the first attempt.
        if self.policy.paced_by().is_some() {
            let elsewhere = self.policy.retry_hook().is_some()
                && (head.uri != self.head.uri || head.headers != self.head.headers);
            retry.sent_to = elsewhere.then(|| Box::new((head.uri.clone(), head.headers.clone())));
        }
        let future = self.service.call(Request::from_parts(head, body));
        let timed = match self.policy.per_attempt() {
            Some(timeout) => {
                let deadline = self.planner.deadline();
                match timer::attempt_alarm(deadline, Some(timeout), Instant::now()) {
                    (Some(at), true) => {
                        timer::arm(timer, Some(at));
                        true
                    }
                    _ => false,
                }
            }
            None => false,
        };
        (future, timed)
    }
}
