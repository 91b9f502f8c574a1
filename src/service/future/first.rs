//! The first attempt: the call's state made from the request, and the attempt sent unless the
//! throttle makes it wait for its turn (or refuses it).

use std::marker::PhantomData;
use std::sync::Arc;

use http::{Request, Response};
use http_body::Body;
use tokio::time::{sleep_until, Instant};
use tower_service::Service;

use crate::body::ReplayableBody;
use crate::plan::Planner;
use crate::policy::check::CheckBeforeRetry;
use crate::policy::idempotency;
use crate::policy::per_call;
use crate::policy::retry_policy::RetryPolicy;
use crate::report::metrics;
use crate::service::check_service::CheckService;
use crate::shared::throttle::{Entered, Sent};
use crate::BoxError;

use super::call::{retrying, Call, Key};
use super::state::{Pause, State};
use super::timer::{attempt_alarm, wake_at};
use super::ResponseFuture;

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
        if let Some(budget) = policy.budget() {
            budget.deposit();
        }
        if let Some(hedge) = policy.hedged_by() {
            hedge.deposit();
        }
        // The first attempt must carry a key the policy injects; any other key is read only when a
        // history reports it, or the classifier asks.
        let key = match idempotency::injects_for(policy.keys(), &head.method) {
            true => match idempotency::key_for_first_attempt(&policy.keys().header, &mut head) {
                (_, true) => Key::Injected,
                (_, false) => Key::Caller,
            },
            false => Key::Unread,
        };
        let copy = body.replay();
        let deadline = policy.call_deadline();
        #[cfg(feature = "grpc")]
        let deadline = crate::policy::grpc::call_deadline(&policy, &head.headers, deadline);
        // The clock is read only for a policy whose timers or hooks need the start.
        let start = (deadline.is_some()
            || policy.per_attempt().is_some()
            || C::RUNS
            || policy.has_classifier())
        .then(Instant::now);
        let deadline_at = start
            .zip(deadline)
            .and_then(|(now, total)| now.checked_add(total));
        let first_sent = start.filter(|_| deadline.is_some() || C::RUNS || policy.has_classifier());
        let planner = Planner::new(deadline_at);
        let mut place = None;
        // While no scope is throttled this is one atomic load: no clock read, no lookup.
        let entered = match policy.paced_by() {
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
                let first = call.head_for(1);
                let future = call.service.call(Request::from_parts(first, body));
                let (alarm, timed) = match start {
                    Some(now) => attempt_alarm(deadline_at, call.policy.per_attempt(), now),
                    None => (None, false),
                };
                // Built where it is returned: the common case moves nothing it need not (not even
                // an unarmed timer).
                let state = match call.policy.hedged_by() {
                    None => State::Calling { future, timed },
                    Some(_) => call.racing(future, timed),
                };
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
                let retry = retrying(&mut call.retry);
                retry.next_body = Some(body);
                let state = State::Pausing {
                    drain: None,
                    pause: Pause::InLine { waiter },
                };
                return Self {
                    state,
                    timer: Some(sleep_until(wake_at(at, deadline_at))),
                    call,
                };
            }
            Some(Entered::Held(until)) => {
                // Its route is held: waited out as a backoff is, the ready service given back.
                call.service = call.service.clone();
                metrics::throttle_hold();
                retrying(&mut call.retry).next_body = Some(body);
                let state = State::Pausing {
                    drain: None,
                    pause: Pause::Backoff {
                        until: Some(until),
                        reserved: None,
                        kept: None,
                    },
                };
                return Self {
                    state,
                    timer: Some(sleep_until(wake_at(until, deadline_at))),
                    call,
                };
            }
            Some(Entered::Refused(why)) => State::Refused { why },
        };
        Self {
            state,
            timer: deadline_at.map(sleep_until),
            call,
        }
    }
}
