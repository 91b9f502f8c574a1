//! The response future of [`Retry`](crate::Retry): runs attempts, waits between them, and returns the
//! final response or error.
//!
//! The future is a small state machine ([`state`]): an attempt in flight, a pause between attempts
//! (the retry's wait, the request body's hand-back, the throttle's turn), the check before a retry,
//! the service's readiness. Each state owns what it waits for; [`Call`](call::Call) keeps what the
//! whole call needs; each step lives in the file named for it.

mod call;
mod check;
mod first;
mod outcome;
mod pause;
mod race;
mod racing;
mod read;
mod send;
mod state;
mod timer;
mod turn;

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::body::drain::Drain;
use crate::body::{ReplayableBody, ResponseBody};
use crate::classify::AttemptTimedOut;
use crate::policy::check::{CheckBeforeRetry, NoCheck};
use crate::report::history::StopReason;
use crate::service::check_service::CheckService;
use crate::{BoxError, Error};

use self::call::Call;
use self::check::release_for_check;
use self::outcome::Step;
use self::pause::Paused;
use self::racing::Raced;
use self::read::Read;
use self::state::{Pause, State, StateProj};
use self::timer::{arm, fired, poll_deadline};

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
    /// assert_eq!(response.body().get_ref().unwrap(), "ok");
    /// # }
    /// ```
    pub struct ResponseFuture<S, ReqB, ResB, C = NoCheck>
    where
        S: Service<Request<ReqB>>,
        ResB: Body,
        C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
    {
        // What the call waits for, and what each wait owns. Each timer-free state is small, so
        // the future is no larger than its largest state plus what the whole call keeps.
        #[pin]
        state: State<S::Future, C::Future, ResB>,
        // The call's one timer: at the whole call's deadline when the policy has one, and at
        // whatever comes first for the state (an attempt's end, a wait's end, a fallback in the
        // throttle's line). Checked whenever a state is pending; `None` when nothing is armed.
        #[pin]
        timer: Option<Sleep>,
        call: Call<S, ReqB, ResB, C>,
    }
}

impl<S, ReqB, ResB, C> Future for ResponseFuture<S, ReqB, ResB, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    ReqB: ReplayableBody,
    ResB: Body,
    ResB::Error: Into<BoxError>,
    C: CheckBeforeRetry<CheckService<S>, ReqB, ResB>,
{
    type Output = Result<Response<ResponseBody<ResB>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            // An attempt that ended (in `Calling`, or in `Reading` once its body is read) comes out
            // of the match; every other state returns or goes round again.
            let (mut result, timed, read) = match this.state.as_mut().project() {
                StateProj::Calling { future, timed } => {
                    let timed = *timed;
                    let result = match future.poll(cx) {
                        Poll::Ready(Ok(response)) => match this.call.policy.buffer_up_to() {
                            None => Ok(response.map(ResponseBody::new)),
                            // The body is read within the attempt, the timer still running.
                            Some(limit) => {
                                let read = Read::new(response, limit);
                                this.state.set(State::Reading { read, timed });
                                continue;
                            }
                        },
                        Poll::Ready(Err(error)) => Err(error.into()),
                        Poll::Pending if !fired(this.timer.as_mut(), cx) => return Poll::Pending,
                        Poll::Pending if timed => Err(Box::new(AttemptTimedOut) as BoxError),
                        Poll::Pending => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(true)));
                        }
                    };
                    (result, timed, None)
                }
                StateProj::Reading { read, timed } => {
                    let timed = *timed;
                    let mut result = match read.poll_read(cx) {
                        Poll::Ready(result) => result,
                        Poll::Pending if !fired(this.timer.as_mut(), cx) => return Poll::Pending,
                        Poll::Pending if timed => Err(Box::new(AttemptTimedOut) as BoxError),
                        Poll::Pending => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(true)));
                        }
                    };
                    let read = this.call.show_body(&mut result);
                    (result, timed, Some(read))
                }
                StateProj::Racing { race, timed } => {
                    match this.call.poll_racing(race, *timed, this.timer.as_mut(), cx) {
                        Raced::Pending => return Poll::Pending,
                        Raced::Next(next) => this.state.set(next),
                        Raced::End(output) => {
                            this.state.set(State::Done);
                            return Poll::Ready(output);
                        }
                    }
                    continue;
                }
                StateProj::Pausing { mut drain, pause } => {
                    if let Some(draining) = drain.as_mut().as_pin_mut()
                        && draining.poll_drain(cx).is_ready()
                    {
                        drain.set(None);
                    }
                    match this.call.poll_pause(pause, this.timer.as_mut(), cx) {
                        Paused::Pending => return Poll::Pending,
                        Paused::Drain(response) => {
                            let limit = this.call.policy.drain_up_to();
                            drain.set(Drain::new(response.into_body(), limit));
                        }
                        // What is still unread of the body is dropped with the pause.
                        Paused::Over => this.state.set(State::Readying),
                        Paused::Check(last) => {
                            let (future, log) = this.call.start_check(&last);
                            arm(this.timer.as_mut(), this.call.check_bound());
                            let kept = Some(last);
                            this.state.set(State::Checking { future, kept, log });
                        }
                        Paused::End(output) => {
                            this.state.set(State::Done);
                            return Poll::Ready(output);
                        }
                    }
                    continue;
                }
                StateProj::Checking { future, kept, log } => {
                    match future.poll(cx) {
                        Poll::Pending => {
                            if release_for_check(kept, log) {
                                // What the check's request waited for may be free now: look again.
                                cx.waker().wake_by_ref();
                            }
                            if !fired(this.timer.as_mut(), cx) {
                                return Poll::Pending;
                            }
                            let (last, log) = (kept.take(), log.clone());
                            this.state.set(State::Done);
                            return Poll::Ready(this.call.check_unanswered(last, &log));
                        }
                        Poll::Ready(verdict) => {
                            let (last, log) = (kept.take(), log.clone());
                            match this.call.after_check(verdict, last, &log) {
                                Some(output) => {
                                    this.state.set(State::Done);
                                    return Poll::Ready(output);
                                }
                                // The wait is over: the throttle's turn, then the attempt. The timer
                                // back at the deadline: the check's own bound is not the attempt's.
                                None => {
                                    arm(this.timer.as_mut(), this.call.planner.deadline());
                                    this.state.set(State::Pausing {
                                        drain: None,
                                        pause: Pause::Turn { reserved: None },
                                    });
                                }
                            }
                        }
                    }
                    continue;
                }
                StateProj::Readying => {
                    match this.call.service.poll_ready(cx) {
                        Poll::Ready(Ok(())) => {
                            let (future, timed) = this.call.send_next(this.timer.as_mut());
                            match this.call.policy.hedged_by() {
                                None => this.state.set(State::Calling { future, timed }),
                                Some(_) => this.state.set(this.call.racing(future, timed)),
                            }
                        }
                        Poll::Ready(Err(error)) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.not_ready(error.into())));
                        }
                        Poll::Pending => {
                            ready!(poll_deadline(this.timer.as_mut(), cx));
                            this.state.set(State::Done);
                            return Poll::Ready(Err(this.call.deadline_passed(false)));
                        }
                    }
                    continue;
                }
                StateProj::Refused { why } => {
                    let why = *why;
                    this.state.set(State::Done);
                    return Poll::Ready(Err(this.call.refused(why)));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            };
            // The attempt's future (or the read) is dropped when the state changes, once: to `Done`
            // when the call ends, to `Pausing` when it retries.
            let mut step = this.call.after_attempt(&result);
            if let Some(read) = read {
                this.call.after_judging(&mut step, &mut result, read);
            }
            match step {
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
                Step::Retry(retry) => {
                    let timer = this.timer.as_mut();
                    let (drain, pause) = this.call.pause(retry, result, timed, timer);
                    this.state.set(State::Pausing { drain, pause });
                }
            }
        }
    }
}
