//! The give-up warning, rate-limited: in an outage every request gives up, and one warn line per
//! request would bury everything else in the log. At most one line per host per interval is printed;
//! the next one carries how many were left out in between.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Uri};
use tokio::time::Instant;

use crate::report::history::StopReason;

/// At most one "not retrying" line per host in this long.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Hosts tracked at once. Past it, hosts whose interval is over are forgotten, and if none is, the
/// new host shares one entry with every other untracked host: the memory stays bounded whatever
/// the number of hosts, and the lines stay bounded too.
const MAX_HOSTS: usize = 1024;

/// The key of the shared entry for hosts beyond [`MAX_HOSTS`] (no host is empty).
const OTHER_HOSTS: &str = "";

/// When each host last got a line, and how many of its give-ups went unprinted since.
#[derive(Debug, Default)]
pub(crate) struct GiveUpLog {
    hosts: Mutex<HashMap<Box<str>, Entry>>,
}

#[derive(Debug)]
struct Entry {
    printed: Instant,
    suppressed: u64,
}

impl GiveUpLog {
    /// Prints the "not retrying" warning for a call to `uri` that gave up, unless a line for its host
    /// was printed less than [`WARN_INTERVAL`] ago (then it is only counted).
    pub(crate) fn gave_up(&self, method: &Method, uri: &Uri, attempts: u32, reason: StopReason) {
        // Nothing to limit (and no lock to take) when nobody listens at warn level.
        if !tracing::enabled!(tracing::Level::WARN) {
            return;
        }
        let host = uri.host().unwrap_or_default();
        let Some(suppressed) = self.admit(host, Instant::now()) else {
            return;
        };
        tracing::warn!(
            http.request.method = %method,
            server.address = host,
            attempts,
            reason = %reason,
            suppressed,
            "not retrying"
        );
    }

    /// `Some(give-ups left out since the host's last line)` when a line is due now, else `None`.
    fn admit(&self, host: &str, now: Instant) -> Option<u64> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let due = |entry: &Entry| now.saturating_duration_since(entry.printed) >= WARN_INTERVAL;
        let key = if hosts.contains_key(host) || host.is_empty() {
            host
        } else {
            if hosts.len() >= MAX_HOSTS {
                hosts.retain(|_, entry| !due(entry) || entry.suppressed > 0);
            }
            if hosts.len() >= MAX_HOSTS {
                OTHER_HOSTS
            } else {
                host
            }
        };
        match hosts.get_mut(key) {
            Some(entry) if due(entry) => {
                entry.printed = now;
                Some(std::mem::take(&mut entry.suppressed))
            }
            Some(entry) => {
                entry.suppressed = entry.suppressed.saturating_add(1);
                None
            }
            None => {
                let entry = Entry {
                    printed: now,
                    suppressed: 0,
                };
                hosts.insert(key.into(), entry);
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_host_per_interval_with_the_count_left_out() {
        let log = GiveUpLog::default();
        let start = Instant::now();
        assert_eq!(log.admit("a.test", start), Some(0));
        for _ in 0..9_999 {
            assert_eq!(log.admit("a.test", start + Duration::from_secs(1)), None);
        }
        assert_eq!(log.admit("b.test", start), Some(0), "hosts are apart");
        assert_eq!(log.admit("a.test", start + WARN_INTERVAL), Some(9_999));
        assert_eq!(log.admit("a.test", start + WARN_INTERVAL), None);
    }

    #[test]
    fn many_hosts_share_one_entry_past_the_limit() {
        let log = GiveUpLog::default();
        let now = Instant::now();
        let lines = (0..10 * MAX_HOSTS)
            .filter(|i| log.admit(&format!("h{i}.test"), now).is_some())
            .count();
        assert_eq!(
            lines,
            MAX_HOSTS + 1,
            "one per tracked host, one for the rest"
        );
        assert!(log.hosts.lock().unwrap().len() <= MAX_HOSTS + 1);
        // Once their interval is over, quiet hosts make room again.
        let later = now + WARN_INTERVAL;
        assert_eq!(log.admit("new.test", later), Some(0));
    }
}
