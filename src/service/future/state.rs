//! Where a call is: the states of [`ResponseFuture`](super::ResponseFuture), each owning what it
//! waits for.
//!
//! ```text
//! new ──▶ Calling ──(retry)──▶ Pausing ──(pause over)──▶ Readying ──(ready)──▶ Calling
//!  ├──(hedged)──▶ Racing ──(retry)──▶ Pausing
//!  ├──(in the throttle's line)──▶ Pausing (InLine)
//!  └──(refused by the throttle)──▶ Refused ──▶ Done
//! Calling ──(a head, when responses are buffered)──▶ Reading ──(retry)──▶ Pausing
//! Pausing ──(a check due)──▶ Checking ──(check says retry)──▶ Pausing (Turn)
//! Calling, Reading, Pausing, Checking, Readying ──(final outcome, deadline, not ready, shed)──▶ Done
//!
//! Pausing:  Backoff ──(over; body not back)──▶ BodyBack ──(body back)──┐
//!              └──────────(over; body back)───────────────────────────┴─▶ the turn ──▶ InLine
//!           Turn (after a check) ───────────────────────────────────────▶ the turn
//! ```
//!
//! The throttle's turn is asked for in the same poll as the wait ends (no state of its own, so a
//! retry that is not held pays for no transition); `Turn` is where a check that says retry leaves
//! the call, and `InLine` where the throttle makes it wait.

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::body::drain::Drain;
use crate::body::ResponseBody;
use crate::service::check_service::CheckLog;
use crate::shared::throttle::{Refusal, Waiter};
use crate::BoxError;

use super::race::Race;
use super::read::Read;

/// What an attempt ended with: the inner service's response or its error.
pub(super) type Attempted<ResB> = Result<Response<ResponseBody<ResB>>, BoxError>;

pin_project! {
    /// Where a call is. The call's one timer (in the future) is armed for the state that needs it;
    /// each state says when.
    #[project = StateProj]
    pub(super) enum State<F, CF, ResB: Body> {
        /// An attempt is in flight: `future` is the inner service's response future. The timer is
        /// at the policy's per-attempt timeout when that comes before the deadline (`timed`), else
        /// at the deadline, or unarmed. Ends with its outcome (classified and planned: a retry
        /// goes to `Pausing`, anything else returns), or with the timer: an attempt that timed out
        /// (an outcome like any other) when `timed`, else the deadline.
        Calling { #[pin] future: F, timed: bool },
        /// A hedged attempt: the attempts in flight together and the timer of the next hedge
        /// (`race`; see [`race`](super::race)). The call's timer is as for `Calling`, for the whole
        /// race: at its first attempt's timeout (`timed`: every attempt in flight times out with
        /// it) or at the deadline. An outcome worth a retry ends nothing while another attempt
        /// runs; a final one, or the last one, ends the race as `Calling`'s outcome does.
        Racing { race: Box<Race<F>>, timed: bool },
        /// The policy buffers responses and the attempt's head has arrived: `read` reads the body,
        /// up to the limit, within the attempt. The timer is where `Calling` left it (the
        /// attempt's timeout, `timed`, or the deadline): it bounds the read as it bounded the
        /// head. Ends with the response (the whole body ready at once, or, over the limit, the
        /// prefix and the rest), classified as in `Calling`; with a failure of the body (an error
        /// after sending); or with the timer, as `Calling` does.
        Reading { read: Read<ResB>, timed: bool },
        /// Between attempts, for what `pause` says, while `drain` reads the last response's
        /// discarded body so that an HTTP/1.1 connection can be reused (dropped when the pause
        /// ends: what is still unread is not worth waiting for).
        Pausing { #[pin] drain: Option<Drain<ResponseBody<ResB>>>, pause: Pause<ResB> },
        /// The last outcome (`kept`) may have taken effect, the wait is over and the body back:
        /// the check runs (`future`; its requests logged in `log`). The timer is at the deadline,
        /// or at the attempt timeout from the check's start when sooner. Retry goes to the
        /// throttle's turn; stop, or an answer of the check's own, returns.
        Checking {
            #[pin] future: CF,
            kept: Option<Box<Attempted<ResB>>>,
            log: CheckLog,
        },
        /// The pause is over: the service clone is driven to readiness, bounded by the deadline.
        /// Ready: the next attempt is sent and the call goes to `Calling`. An error ends the call.
        Readying,
        /// The throttle refused the first attempt (shed, or its turn would pass the deadline): the
        /// call ends at the first poll with that error.
        Refused { why: Refusal },
        /// The output has been returned; polling again panics, as `Future` allows.
        Done,
    }
}

/// What a call between attempts waits for, in order.
pub(super) enum Pause<ResB: Body> {
    /// The retry's own wait (its backoff, or the delay the server asked for) until `until` (none
    /// for a zero wait); the timer is at it when it comes before the deadline. `reserved` keeps
    /// the call's place in the throttle's line meanwhile; `kept` is the last outcome when it
    /// cannot be drained yet. The request body may come back, or be lost, meanwhile.
    Backoff {
        until: Option<Instant>,
        reserved: Option<Waiter>,
        kept: Option<Kept<ResB>>,
    },
    /// The wait is over but the previous attempt still holds the request body: waited for until
    /// `until` (a short grace, bounded by the deadline), else the call ends with `kept`, the last
    /// outcome.
    BodyBack {
        until: Instant,
        reserved: Option<Waiter>,
        kept: Option<Kept<ResB>>,
    },
    /// A check said retry: the attempt asks the throttle for its turn (from the place `reserved`
    /// for it, if any) at the next poll. The timer is at the deadline.
    Turn { reserved: Option<Waiter> },
    /// In the throttle's line: those ahead wake this call when they leave; the timer is at a
    /// fallback the line gives, or at the deadline when that comes first.
    InLine { waiter: Waiter },
}

/// The outcome a retry follows, kept instead of drained: for the check that runs before the retry
/// (`for_check`), or until the request body comes back (if it never does, the call ends with it).
pub(super) struct Kept<ResB: Body> {
    pub(super) outcome: Box<Attempted<ResB>>,
    pub(super) for_check: bool,
}
