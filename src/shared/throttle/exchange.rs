//! A lane's exchanges with a fleet's store: reports and leases sent in the background, outside the
//! shard's lock, and the store's answers applied when they come.

use std::time::Duration;

use tokio::time::Instant;

use super::authority::Authority;
use super::fleet::FleetLane;
use super::handle::{Shared, Throttle};
use super::lanes::{Entry, FORGET_AFTER};
use crate::shared::store::{Engage, ScheduleCall, ScheduleReply, StoreError};

/// A call to a scope's schedule in a fleet's store, made outside the shard's lock.
pub(super) struct Exchange {
    key: u64,
    name: String,
    schedule: String,
    call: ScheduleCall,
    lease: bool,
}

impl Throttle {
    /// Sends `exchange` to its scope's schedule in the background: nothing waits for it but the
    /// requests that need its slots, and those no longer than the store's timeout.
    pub(super) fn send(&self, exchange: Exchange) {
        let Some(store) = self.shared.fleet.clone() else {
            return;
        };
        let Exchange {
            key,
            name,
            schedule,
            call,
            lease,
        } = exchange;
        // A throttling answer or a hold engages the scope fleet-wide, for as long as a lane
        // stays engaged here after it.
        let mark = (call.throttled.is_some() || call.hold_ms > 0)
            .then(|| FORGET_AFTER.saturating_add(Duration::from_millis(call.hold_ms)));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let error = StoreError::new("no tokio runtime to reach the store from");
            self.answered(key, Err(error), lease);
            return;
        };
        store.ensure_task();
        let throttle = self.clone();
        runtime.spawn(async move {
            let result = store.schedule(&schedule, call).await;
            let ok = result.is_ok();
            throttle.answered(key, result, lease);
            if let Some(engaged_for) = mark.filter(|_| ok) {
                let _ = store.engaged(Some((&name, engaged_for))).await;
            }
        });
    }

    /// The store answered an exchange for scope `key` (or failed to).
    fn answered(&self, key: u64, result: Result<ScheduleReply, StoreError>, lease: bool) {
        let now = Instant::now();
        let mut shard = self.shared.lanes.shard(key);
        let Some(entry) = shard.get_mut(&key) else {
            return;
        };
        let lane = &mut entry.lane;
        let Some(fleet) = lane.fleet.as_mut() else {
            return;
        };
        match result {
            Ok(reply) => {
                if let Some(until) = fleet.answered(now, &reply, lease) {
                    lane.hold(now, until);
                }
            }
            Err(_) => fleet.failed(now, lease),
        }
        lane.wake_first(now);
    }
}

impl Entry {
    /// The lease the lane needs now, if any.
    pub(super) fn lease(&mut self, key: u64, now: Instant) -> Option<Exchange> {
        let waiting = self.lane.waiting();
        let fleet = self.lane.fleet.as_mut()?;
        let call = fleet.lease(now, waiting)?;
        Some(self.exchange(key, call, true))
    }

    /// A report to the fleet's schedule, if `report` makes one.
    pub(super) fn report(
        &mut self,
        key: u64,
        report: impl FnOnce(&mut FleetLane) -> Option<ScheduleCall>,
    ) -> Option<Exchange> {
        let call = report(self.lane.fleet.as_mut()?)?;
        Some(self.exchange(key, call, false))
    }

    fn exchange(&self, key: u64, call: ScheduleCall, lease: bool) -> Exchange {
        let schedule = self
            .lane
            .fleet
            .as_ref()
            .map_or_else(String::new, |fleet| fleet.key.clone());
        let name = self.name.clone().unwrap_or_else(|| self.authority.key());
        Exchange {
            key,
            name,
            schedule,
            call,
            lease,
        }
    }
}

impl Engage for Shared {
    /// Engages the scopes the fleet has engaged, so that this process paces them too, even before
    /// its own first throttling answer from them.
    fn engage(&self, names: &[String]) {
        let now = Instant::now();
        for name in names {
            let server = name
                .split_once('#')
                .map_or(name.as_str(), |(server, _)| server);
            let Some(authority) = Authority::parse(server) else {
                continue;
            };
            let key = self.scoping.key_of_name(name);
            let mut shard = self.lanes.shard(key);
            let entry = match self.lanes.find(&mut shard, key, now).is_some() {
                true => shard.get_mut(&key),
                false => self.make(&mut shard, key, authority, || name.clone(), now, false),
            };
            if let Some(entry) = entry {
                // Engaged by the fleet: kept while the fleet keeps it engaged.
                entry.lane.last_signal = entry.lane.last_signal.max(now);
            }
        }
    }
}
