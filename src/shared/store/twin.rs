//! `schedule.lua` against its Rust twin (`schedule.rs`): the same calls, on the same clock (the
//! Rust schedule is given the time Redis answered at), give the same answers. A rule changed in
//! one and not the other fails here, whatever the timing of the machine.

use retry_test_support::redis_server;

use std::time::Duration;

use super::backend::{Backend, Refused, ScheduleCall, ScheduleReply, SlotSent};
use super::redis::Redis;
use super::schedule::SlotSchedule;

/// One exchange of the sequence.
enum Step {
    /// Slots wanted.
    Lease(u32),
    /// A throttling answer to the first slot of the last answer, and a slot.
    Throttled,
    /// The same without a time to come back: bare, perhaps sparse.
    Bare,
    /// Answers admitted since the last exchange, and a slot.
    Admitted(u32),
    /// A throttling answer that engages the scope, from a process sending at this rate.
    Engage(f64),
    /// Nothing for this many ms.
    Pause(u64),
    /// The server's hold, in ms.
    Hold(u64),
    /// Rate-limit headers: remaining, reset in ms; and two slots.
    Quota(u64, u64),
    /// The time (µs) slots that went unused stood for, and a slot.
    Unused(u64),
}

fn call(want: u32) -> ScheduleCall {
    ScheduleCall::lease(want)
}

/// A throttling answer (`held`: with a time to come back) to the first slot `reply` leased,
/// spaced at its interval.
fn throttled(reply: &ScheduleReply, held: bool) -> ScheduleCall {
    let slot = SlotSent {
        issued: reply.now,
        at: reply.first,
        rate: 1e6 / reply.interval,
    };
    ScheduleCall {
        throttled: Some(Refused {
            slot: Some(slot),
            held,
            backlogged: true,
            sending: 0.0,
        }),
        ..call(1)
    }
}

/// Whether two answers agree: times to the microsecond, the rate to the thousandth (the two
/// languages' `pow` may differ in the last bit, and both floor).
fn agree(lua: &ScheduleReply, rust: &ScheduleReply) -> bool {
    let close = |a: f64, b: f64, by: f64| (a - b).abs() <= by;
    lua.granted == rust.granted
        && close(lua.first, rust.first, 1.0)
        && close(lua.interval, rust.interval, 1.0)
        && close(lua.hold, rust.hold, 1.0)
        && close(lua.gap, rust.gap, 1.0)
        && close(lua.decreased, rust.decreased, 1.0)
        && close(lua.rate, rust.rate, 0.0011)
}

#[tokio::test]
async fn the_script_answers_as_its_rust_twin_does() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let redis = Redis::new(&server.url(), None, Duration::from_secs(2)).unwrap();
    // Slow start, its overshoot, overshoots at the rate the last cut left (refuted: deeper cuts),
    // slots that went unused, a hold, slots after it, then rate-limit headers.
    use Step::*;
    let long = [
        Lease(2),
        Lease(1),
        Throttled,
        Throttled,
        Throttled,
        Lease(3),
        Unused(150_000),
        Hold(300),
        Lease(2),
        Throttled,
        Quota(49, 4900),
        Lease(1),
    ];
    // 25,000 r/s for 40 ms, then cut: each lease's slots are used up well before the next step,
    // so probing is paused between the leases (nobody waited), by both or neither.
    let idle = [
        Quota(1000, 40),
        Lease(2),
        Lease(1),
        Throttled,
        Lease(1),
        Lease(1),
        // Slots for about 12 ms: the fleet is idle from the last of them, not from the lease.
        Lease(300),
        Lease(1),
        Lease(1),
    ];
    // Engaged at 1.1 x the reporter's 40 r/s; bare refusals sparse among 40 answers cut nothing
    // until they pass 5%; a second of answers measured, and a cut that stops at the rate
    // admitted (the floor); a refused rate well above what is admitted cuts from the latter.
    let rules = [
        Engage(40.0),
        Lease(2),
        Admitted(40),
        Bare,
        Bare,
        Bare,
        Lease(1),
        Pause(1100),
        Admitted(30),
        Throttled,
        Lease(4),
        Pause(1100),
        Admitted(5),
        Lease(1),
        Throttled,
        Lease(2),
    ];
    follow(&redis, "{twin:throttle:http://api.test:80}", &long).await;
    follow(&redis, "{twin:throttle:http://idle.test:80}", &idle).await;
    follow(&redis, "{twin:throttle:http://rules.test:80}", &rules).await;
}

/// Runs `steps` on the script, under `key`, and on a Rust schedule at the times Redis answered.
async fn follow(redis: &Redis, key: &str, steps: &[Step]) {
    let mut rust: Option<SlotSchedule> = None;
    let mut last: Option<ScheduleReply> = None;
    for (i, step) in steps.iter().enumerate() {
        let sent = match *step {
            Step::Lease(want) => call(want),
            Step::Throttled => throttled(last.as_ref().expect("a lease before"), true),
            Step::Bare => throttled(last.as_ref().expect("a lease before"), false),
            Step::Admitted(n) => ScheduleCall {
                admitted: n,
                ..call(1)
            },
            Step::Engage(sending) => ScheduleCall {
                throttled: Some(Refused {
                    slot: None,
                    held: true,
                    backlogged: false,
                    sending,
                }),
                ..call(0)
            },
            Step::Pause(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
            Step::Hold(ms) => ScheduleCall {
                hold_ms: ms,
                ..call(0)
            },
            Step::Quota(remaining, reset_ms) => ScheduleCall {
                quota: Some((remaining, reset_ms)),
                ..call(2)
            },
            Step::Unused(n) => ScheduleCall {
                unused: n,
                ..call(1)
            },
        };
        let lua = redis.schedule(key, sent).await.unwrap();
        let schedule = rust.get_or_insert_with(|| SlotSchedule::new(lua.now, &sent));
        let twin = schedule.exchange(lua.now, sent);
        assert!(
            agree(&lua, &twin),
            "{key} step {i}: {sent:?}\nlua  {lua:?}\nrust {twin:?}"
        );
        last = Some(lua);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
