//! The Redis backend: each read-modify-write one Lua script (EVALSHA, loaded again when Redis has
//! forgotten it), timed by Redis's `TIME` so that clients with skewed clocks agree.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::backend::{Backend, BudgetCall, BudgetReply, Call, ScheduleCall, ScheduleReply};
use super::connect;
use super::error::StoreError;
use super::schedule::{FORGET_MS, MAX_ENGAGED};
use crate::shared::law::{
    ACCELERATION, BETA, BETA_REFUTED, CLEAR_GAP, DOUBLING, ENGAGE_HEADROOM, MARGIN, MAX_MARGIN,
    MAX_QUIET, MAX_RATE, MIN_PROBE, MIN_RATE, PROBE, QUIET, SPARSE, SPARSE_AFTER, START_RATE,
    WINDOW,
};

/// A lazily connected, self-reconnecting connection to one Redis.
pub(crate) struct Redis {
    /// Kept to connect anew with other timeouts ([`Backend::with_timeout`]).
    client: Client,
    connection: ConnectionManager,
    budget: Script,
    schedule: Script,
    engaged: Script,
}

impl Redis {
    /// Connects lazily to `url` (`redis://[:password@]host[:port][/db]`, or `rediss://` with the
    /// `redis-tls` feature, trusting `ca` when given), each call bounded by `timeout`. Needs a
    /// tokio runtime.
    pub(crate) fn new(url: &str, ca: Option<&[u8]>, timeout: Duration) -> Result<Self, StoreError> {
        Self::connect(connect::client(url, ca)?, timeout)
    }

    fn connect(client: Client, timeout: Duration) -> Result<Self, StoreError> {
        // No retries inside the manager: a failed call falls back at once, and the next call
        // reconnects. Its bounds are the store's, or a connection would fail sooner than asked.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| StoreError::new(format!("redis: {e}")))?;
        Ok(Self {
            client,
            connection,
            budget: Script::new(include_str!("budget.lua")),
            schedule: Script::new(include_str!("schedule.lua")),
            engaged: Script::new(include_str!("engaged.lua")),
        })
    }
}

fn failed(e: redis::RedisError) -> StoreError {
    StoreError::new(format!("redis: {e}"))
}

impl Backend for Redis {
    fn with_timeout(&self, timeout: Duration) -> Option<Arc<dyn Backend>> {
        let redis = Self::connect(self.client.clone(), timeout).ok()?;
        Some(Arc::new(redis))
    }

    fn budget(&self, key: &str, call: BudgetCall) -> Call<'_, BudgetReply> {
        let mut connection = self.connection.clone();
        let mut invocation = self.budget.key(key);
        invocation
            .arg(call.deposits)
            .arg(call.want)
            .arg(call.floor)
            .arg(call.per_deposit)
            .arg(call.window_ms);
        Box::pin(async move {
            let (granted, allowed, withdrawn): (u64, u64, u64) = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            Ok(BudgetReply {
                granted,
                allowed,
                withdrawn,
            })
        })
    }

    fn schedule(&self, key: &str, call: ScheduleCall) -> Call<'_, ScheduleReply> {
        let mut connection = self.connection.clone();
        let mut invocation = self.schedule.key(key);
        let (remaining, reset) = call.quota.map_or((-1, 0), |(remaining, reset)| {
            (i64::try_from(remaining).unwrap_or(i64::MAX), reset)
        });
        let refused = call.throttled;
        let slot = refused.and_then(|refused| refused.slot);
        invocation
            .arg(call.want)
            .arg(u8::from(refused.is_some()))
            .arg(slot.map_or(-1.0, |slot| slot.issued))
            .arg(slot.map_or(-1.0, |slot| slot.at))
            .arg(slot.map_or(0.0, |slot| slot.rate))
            .arg(call.hold_ms)
            .arg(remaining)
            .arg(reset)
            // The law, so that both backends apply the same one.
            .arg(START_RATE)
            .arg(DOUBLING.as_secs_f64())
            .arg(BETA)
            .arg(PROBE)
            .arg(MIN_PROBE)
            .arg(ACCELERATION)
            .arg(MIN_RATE)
            .arg(MAX_RATE)
            .arg(FORGET_MS)
            .arg(QUIET.as_secs_f64())
            .arg(MAX_QUIET.as_secs_f64())
            .arg(MARGIN)
            .arg(MAX_MARGIN)
            .arg(BETA_REFUTED)
            .arg(call.unused)
            .arg(call.admitted)
            .arg(u8::from(refused.is_some_and(|refused| refused.held)))
            .arg(u8::from(refused.is_some_and(|refused| refused.backlogged)))
            .arg(refused.map_or(0.0, |refused| refused.sending))
            .arg(SPARSE)
            .arg(SPARSE_AFTER)
            .arg(CLEAR_GAP)
            .arg(ENGAGE_HEADROOM)
            .arg(WINDOW);
        Box::pin(async move {
            let reply: (i64, i64, i64, u32, i64, i64, i64, i64) = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            let (now, first, interval, granted, hold, rate, gap, decreased) = reply;
            Ok(ScheduleReply {
                now: now as f64,
                first: first as f64,
                interval: interval as f64,
                granted,
                hold: hold as f64,
                rate: rate as f64 / 1e3,
                gap: gap as f64,
                decreased: decreased as f64,
            })
        })
    }

    fn engaged(&self, key: &str, mark: Option<(&str, u64)>) -> Call<'_, Vec<String>> {
        let mut connection = self.connection.clone();
        let mut invocation = self.engaged.key(key);
        let (authority, ms) = mark.unwrap_or(("", 0));
        invocation.arg(authority).arg(ms).arg(MAX_ENGAGED);
        Box::pin(async move {
            invocation
                .invoke_async(&mut connection)
                .await
                .map_err(failed)
        })
    }
}
