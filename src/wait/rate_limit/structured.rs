//! Generation 1: `RateLimit` and `RateLimit-Policy`, the structured fields of the IETF draft (and
//! the dictionary form of its draft 07).

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::status::RateLimitStatus;
use super::structured_field as sf;

pub(super) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(super) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

pub(super) fn structured(headers: &HeaderMap) -> Option<RateLimitStatus> {
    let members = sf::parse_field(headers.get_all(RATELIMIT))?;
    if members.is_empty() {
        return None;
    }
    if members.iter().all(|m| m.key.is_some()) {
        return draft_07_dictionary(&members);
    }
    let mut policies: Option<Vec<sf::Member<'_>>> = None;
    let mut most_constrained: Option<RateLimitStatus> = None;
    for member in &members {
        let Some(remaining) = member.param("r").and_then(sf::Item::non_negative) else {
            continue; // an item without a valid remaining count says nothing
        };
        let reset = match member.param("t").map(sf::Item::non_negative) {
            Some(None) => continue, // a reset that is not a count of seconds: the item is malformed
            Some(Some(t)) => Some(Duration::from_secs(t)),
            None => None,
        };
        let reset = reset.or_else(|| {
            // A spent quota without a reset: its policy's window bounds the wait.
            let name = member.item.name()?;
            let policies = policies.get_or_insert_with(|| {
                sf::parse_field(headers.get_all(RATELIMIT_POLICY)).unwrap_or_default()
            });
            policies
                .iter()
                .find(|p| p.item.name() == Some(name))
                .and_then(|p| p.param("w"))
                .and_then(sf::Item::non_negative)
                .map(Duration::from_secs)
        });
        let status = RateLimitStatus { remaining, reset };
        most_constrained = Some(match most_constrained {
            None => status,
            Some(best) => tighter(best, status),
        });
    }
    most_constrained
}

/// The status that constrains more: fewer requests left, or, both spent, the later reset.
fn tighter(a: RateLimitStatus, b: RateLimitStatus) -> RateLimitStatus {
    match a.remaining.cmp(&b.remaining) {
        std::cmp::Ordering::Less => a,
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Equal => RateLimitStatus {
            remaining: a.remaining,
            reset: a.reset.max(b.reset),
        },
    }
}

/// `RateLimit: limit=100, remaining=0, reset=30` (draft 07).
fn draft_07_dictionary(members: &[sf::Member<'_>]) -> Option<RateLimitStatus> {
    let value = |key: &str| {
        members
            .iter()
            .rev() // a repeated dictionary key: the last one counts (RFC 8941)
            .find(|m| m.key == Some(key))
            .map(|m| m.item.non_negative())
    };
    let remaining = value("remaining")??;
    let reset = match value("reset") {
        Some(reset) => Some(Duration::from_secs(reset?)),
        None => None,
    };
    Some(RateLimitStatus { remaining, reset })
}
