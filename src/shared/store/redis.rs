//! The Redis backend: each read-modify-write one Lua script (EVALSHA, loaded again when Redis has
//! forgotten it), timed by Redis's `TIME` so that clients with skewed clocks agree.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::backend::{Backend, BudgetCall, BudgetReply, Call};
use super::connect;
use super::error::StoreError;

/// A lazily connected, self-reconnecting connection to one Redis.
pub(crate) struct Redis {
    connection: ConnectionManager,
    budget: Script,
}

impl Redis {
    /// Connects lazily to `url` (`redis://[:password@]host[:port][/db]`, or `rediss://` with the
    /// `redis-tls` feature, trusting `ca` when given), each call bounded by `timeout`. Needs a
    /// tokio runtime.
    pub(crate) fn new(url: &str, ca: Option<&[u8]>, timeout: Duration) -> Result<Self, StoreError> {
        let client = connect::client(url, ca)?;
        // No retries inside the manager: a failed call falls back at once, and the next call
        // reconnects.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::new(format!("redis: {e}")))?;
        Ok(Self {
            connection,
            budget: Script::new(include_str!("budget.lua")),
        })
    }
}

fn failed(e: redis::RedisError) -> StoreError {
    StoreError::new(format!("redis: {e}"))
}

impl Backend for Redis {
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
}
