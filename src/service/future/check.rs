//! The check that runs before a retry of an outcome that may have taken effect.

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::ReplayableBody;
use crate::body::ResponseBody;
use crate::classify::Outcome;
use crate::policy::check::{CheckBeforeRetry, CheckRequest, CheckVerdict};
use crate::report::check::{CheckAnswer, CheckRecord};
use crate::report::history::StopReason;
use crate::service::check_service::{CheckLog, CheckService};
use crate::shared::throttle::later;
use crate::{BoxError, Error};

use super::call::{retrying, Call};
use super::state::Attempted;

impl<S, ReqB, ResB, C> Call<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    /// Starts the check on `last`, the kept outcome: its future, and the log of its requests.
    pub(super) fn start_check(&mut self, last: &Attempted<ResB>) -> (C::Future, CheckLog) {
        let body = self.body.as_ref().ok().and_then(|body| body.replay().ok());
        let elapsed = self
            .first_sent
            .map_or(std::time::Duration::ZERO, |sent| sent.elapsed());
        let log = CheckLog::default();
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
        let service = CheckService::new(self.service.clone(), log.clone());
        (self.check.check(service, request), log)
    }

    /// When a check must have answered: the deadline, or the attempt timeout from now when that
    /// is sooner (a check is bounded as an attempt is).
    pub(super) fn check_bound(&self) -> Option<Instant> {
        let timeout = self
            .policy
            .attempt_timeout
            .map(|timeout| later(Instant::now(), timeout));
        match (self.planner.deadline(), timeout) {
            (Some(deadline), Some(timeout)) => Some(deadline.min(timeout)),
            (deadline, timeout) => deadline.or(timeout),
        }
    }

    /// Records what the check answered and acts on it: `None` to retry, or the call's output.
    pub(super) fn after_check(
        &mut self,
        verdict: CheckVerdict<ResB>,
        last: Option<Box<Attempted<ResB>>>,
        log: &CheckLog,
    ) -> Option<Result<Response<ResponseBody<ResB>>, Error>> {
        let answer = match &verdict {
            CheckVerdict::Retry => CheckAnswer::Retry,
            CheckVerdict::Stop => CheckAnswer::Stop,
            CheckVerdict::Respond(response) => CheckAnswer::Respond(response.status()),
        };
        self.record_check(answer, log);
        match verdict {
            CheckVerdict::Retry => None,
            CheckVerdict::Stop => Some(self.stop_after_check(last, StopReason::CheckStopped)),
            CheckVerdict::Respond(response) => {
                let response = response.map(ResponseBody::new);
                Some(self.finish(Ok(response), StopReason::CheckAnswered, None))
            }
        }
    }

    /// The check did not answer within its bound: its own (the attempt timeout), and the call
    /// ends as if it had said stop; or the deadline.
    pub(super) fn check_unanswered(
        &mut self,
        last: Option<Box<Attempted<ResB>>>,
        log: &CheckLog,
    ) -> Result<Response<ResponseBody<ResB>>, Error> {
        self.record_check(CheckAnswer::Interrupted, log);
        let deadline = self.planner.deadline();
        match deadline.is_none_or(|deadline| Instant::now() < deadline) {
            true => self.stop_after_check(last, StopReason::CheckTimedOut),
            false => Err(self.deadline_passed(false)),
        }
    }

    /// Ends the call after a check: with the kept outcome, or, when it was let go of while the
    /// check waited, with an error whose history holds it.
    fn stop_after_check(
        &mut self,
        last: Option<Box<Attempted<ResB>>>,
        reason: StopReason,
    ) -> Result<Response<ResponseBody<ResB>>, Error> {
        match last {
            Some(last) => self.finish(*last, reason, None),
            None => Err(Error::stopped(None, self.close(reason, None))),
        }
    }

    fn record_check(&mut self, answer: CheckAnswer, log: &CheckLog) {
        let after_attempt = self.planner.attempts();
        retrying(&mut self.retry).history.push_check(CheckRecord {
            after_attempt,
            requests: log.take(),
            answer,
        });
    }
}

/// Lets go of the kept response once the check has sent a request of its own: its unread body may
/// hold the connection or stream that request needs (a server that allows one HTTP/2 stream at a
/// time, a limit on connections). Its status stays in the history; a check that then says stop
/// ends the call with an error carrying it. A failure, or a response whose body has ended, holds
/// nothing and is kept. `true` when it let go.
pub(super) fn release_for_check<ResB: Body>(
    kept: &mut Option<Box<Attempted<ResB>>>,
    log: &CheckLog,
) -> bool {
    let holds = matches!(kept.as_deref(), Some(Ok(response)) if !response.body().is_end_stream());
    let release = holds && log.has_sent();
    if release {
        *kept = None;
    }
    release
}
