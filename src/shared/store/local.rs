//! The in-memory backend: the semantics of the Redis script, for one process (and for the tests
//! that check both backends behave alike).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use super::backend::{Backend, BudgetCall, BudgetReply, Call, ScheduleCall, ScheduleReply};
use super::schedule::{SlotSchedule, MAX_ENGAGED};

/// Budgets in a map, timed by tokio's clock.
pub(crate) struct Local {
    start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per budget: step -> (deposits, units withdrawn).
    budgets: HashMap<String, BTreeMap<u64, (u64, u64)>>,
    /// Per authority: its schedule (quiet ones dropped, as the script's keys expire).
    schedules: HashMap<String, SlotSchedule>,
    /// Per index: authority -> engaged until (µs).
    engaged: HashMap<String, BTreeMap<String, f64>>,
}

impl Local {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Backend for Local {
    fn budget(&self, key: &str, call: BudgetCall) -> Call<'_, BudgetReply> {
        let now = self.now_ms();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let steps = state.budgets.entry(key.to_owned()).or_default();
        // As the script does: ten steps to the window, steps older than the window forgotten.
        let step = (call.window_ms / 10).max(1);
        let epoch = now / step;
        steps.retain(|&at, _| at + 10 > epoch);
        steps.entry(epoch).or_default().0 += call.deposits;
        let (deposits, withdrawn) = steps
            .values()
            .fold((0u64, 0u64), |(d, w), &(sd, sw)| (d + sd, w + sw));
        let allowed = call
            .floor
            .saturating_add(deposits.saturating_mul(call.per_deposit));
        let granted = call.want.min(allowed.saturating_sub(withdrawn));
        steps.entry(epoch).or_default().1 += granted;
        let reply = BudgetReply {
            granted,
            allowed,
            withdrawn: withdrawn + granted,
        };
        Box::pin(async move { Ok(reply) })
    }

    fn schedule(&self, key: &str, call: ScheduleCall) -> Call<'_, ScheduleReply> {
        let now = self.start.elapsed().as_secs_f64() * 1e6;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .schedules
            .retain(|_, schedule| !schedule.is_quiet(now));
        let reply = state
            .schedules
            .entry(key.to_owned())
            .or_insert_with(|| SlotSchedule::new(now, &call))
            .exchange(now, call);
        Box::pin(async move { Ok(reply) })
    }

    fn engaged(&self, key: &str, mark: Option<(&str, u64)>) -> Call<'_, Vec<String>> {
        let now = self.start.elapsed().as_secs_f64() * 1e6;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let index = state.engaged.entry(key.to_owned()).or_default();
        index.retain(|_, until| *until > now);
        if let Some((authority, ms)) = mark {
            let until = now + ms as f64 * 1e3;
            let entry = index.entry(authority.to_owned()).or_insert(until);
            *entry = entry.max(until);
        }
        let engaged = index.keys().take(MAX_ENGAGED).cloned().collect();
        Box::pin(async move { Ok(engaged) })
    }
}
