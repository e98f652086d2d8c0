//! Failure injection and rate limiting: queued faults, the "down" switch, the primary limit.

use super::reply::Reply;

/// Message of GitHub's secondary rate limit.
pub(crate) const SECONDARY_LIMIT_MESSAGE: &str = "You have exceeded a secondary rate limit. \
     Please wait a few minutes before you try again. If you reach out to GitHub Support for \
     help, please include the request ID.";

/// Message of GitHub's primary rate limit.
pub(crate) const PRIMARY_LIMIT_MESSAGE: &str = "API rate limit exceeded. (But here's the good \
     news: Authenticated requests get a higher rate limit. Check out the documentation for more \
     details.)";

/// One way for a request to fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (e.g. 500, 502, 503) and `{"message":"Server Error"}`.
    ServerError(u16),
    /// The primary rate limit: this status (403 or 429), `x-ratelimit-remaining: 0` and
    /// `x-ratelimit-reset` this many seconds ahead; no `retry-after`, as on GitHub.
    RateLimited {
        /// 403 or 429.
        status: u16,
        /// Seconds until `x-ratelimit-reset`.
        reset_after_secs: u64,
    },
    /// A secondary rate limit: this status (403 or 429), `retry-after` in seconds,
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset` at the same moment.
    SecondaryRateLimited {
        /// 403 or 429.
        status: u16,
        /// The `retry-after` header, in seconds.
        retry_after_secs: u64,
    },
    /// Close the connection without answering.
    Disconnect,
}

/// The "down" switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Down {
    /// Serving normally.
    #[default]
    Up,
    /// The listeners are closed: connecting fails with "connection refused", and open
    /// connections are dropped.
    Refuse,
    /// Every request gets `503 Service Unavailable`.
    Unavailable,
    /// Requests are accepted but not answered until the switch changes (timeouts).
    Hang,
}

#[derive(Debug)]
struct FaultRule {
    route: Option<String>,
    fault: Fault,
    remaining: u32,
}

/// Faults drawn at random for every request, after the queued ones: a soak's steady weather.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct FaultRates {
    /// Share of requests (0.0 to 1.0) answered `502 Server Error`.
    pub server_error: f64,
    /// Share of requests answered `429` with `retry-after` (a secondary rate limit).
    pub rate_limited: f64,
    /// The `retry-after` of those 429s, in seconds.
    pub retry_after_secs: u64,
}

/// Faults waiting for requests, first queued first served, then the random ones.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queued: Vec<FaultRule>,
    rates: FaultRates,
    /// xorshift64 state for the random faults; a fixed seed keeps a run repeatable.
    seed: u64,
}

impl FaultQueue {
    /// The next `times` requests (to `route`, or to any route) fail with `fault`.
    pub(crate) fn push(&mut self, route: Option<&str>, fault: Fault, times: u32) {
        if times > 0 {
            let route = route.map(str::to_string);
            self.queued.push(FaultRule {
                route,
                fault,
                remaining: times,
            });
        }
    }

    /// Every later request draws a fault with these rates (after the queued faults).
    pub(crate) fn set_rates(&mut self, rates: FaultRates) {
        self.rates = rates;
    }

    /// The fault for a request to `route`: one use of the first matching queued rule, else a
    /// random draw with the rates.
    pub(crate) fn take(&mut self, route: &str) -> Option<Fault> {
        let Some(index) = self
            .queued
            .iter()
            .position(|r| r.route.as_deref().is_none_or(|want| want == route))
        else {
            return self.draw();
        };
        let rule = &mut self.queued[index];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.queued.remove(index);
        }
        Some(fault)
    }

    fn draw(&mut self) -> Option<Fault> {
        let FaultRates {
            server_error,
            rate_limited,
            retry_after_secs,
        } = self.rates;
        if server_error <= 0.0 && rate_limited <= 0.0 {
            return None;
        }
        if self.seed == 0 {
            self.seed = 0x9E37_79B9_7F4A_7C15;
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let roll = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        if roll < server_error {
            Some(Fault::ServerError(502))
        } else if roll < server_error + rate_limited {
            Some(Fault::SecondaryRateLimited {
                status: 429,
                retry_after_secs,
            })
        } else {
            None
        }
    }

    /// Uses left across all queued faults.
    pub(crate) fn pending(&self) -> u64 {
        self.queued.iter().map(|r| u64::from(r.remaining)).sum()
    }

    /// Drops the queued faults and the rates.
    pub(crate) fn clear(&mut self) {
        self.queued.clear();
        self.rates = FaultRates::default();
    }
}

/// GitHub's primary rate limit: `limit` requests per hour-long window.
#[derive(Debug)]
pub(crate) struct RateWindow {
    pub(crate) limit: u32,
    used: u32,
    reset: i64,
}

impl RateWindow {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            used: 0,
            reset: 0,
        }
    }

    fn roll(&mut self, now: i64) {
        if now >= self.reset {
            self.used = 0;
            self.reset = now + 3_600;
        }
    }

    /// Counts a request; `false` when the window is exhausted.
    pub(crate) fn take(&mut self, now: i64) -> bool {
        self.roll(now);
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }

    /// The `x-ratelimit-*` headers for the current window.
    pub(crate) fn headers(&mut self, now: i64) -> Vec<(&'static str, String)> {
        self.roll(now);
        rate_headers(self.limit, self.limit.saturating_sub(self.used), self.reset)
    }

    /// The reply once the window is exhausted.
    pub(crate) fn exhausted(&mut self, now: i64) -> Reply {
        self.roll(now);
        let mut reply = Reply::error(403, PRIMARY_LIMIT_MESSAGE);
        reply.headers = rate_headers(self.limit, 0, self.reset);
        reply
    }
}

fn rate_headers(limit: u32, remaining: u32, reset: i64) -> Vec<(&'static str, String)> {
    vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-used", (limit - remaining).to_string()),
        ("x-ratelimit-resource", "core".to_string()),
    ]
}

/// The reply a fault produces; `None` for [`Fault::Disconnect`].
pub(crate) fn fault_reply(fault: &Fault, now: i64, limit: u32) -> Option<Reply> {
    let secs = |s: u64| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX));
    match fault {
        Fault::ServerError(status) => {
            let mut reply = Reply::error(*status, "Server Error");
            reply.headers = rate_headers(limit, limit, now + 3_600);
            Some(reply)
        }
        Fault::RateLimited {
            status,
            reset_after_secs,
        } => {
            let mut reply = Reply::error(*status, PRIMARY_LIMIT_MESSAGE);
            reply.headers = rate_headers(limit, 0, secs(*reset_after_secs));
            Some(reply)
        }
        Fault::SecondaryRateLimited {
            status,
            retry_after_secs,
        } => {
            let mut reply = Reply::error(*status, SECONDARY_LIMIT_MESSAGE);
            reply.headers = rate_headers(limit, 0, secs(*retry_after_secs));
            Some(reply.with_header("retry-after", retry_after_secs.to_string()))
        }
        Fault::Disconnect => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_for_any_route_is_used_up_after_its_count() {
        let mut queue = FaultQueue::default();
        queue.push(None, Fault::ServerError(502), 2);
        assert_eq!(queue.take("GET /app"), Some(Fault::ServerError(502)));
        assert_eq!(queue.take("GET /user"), Some(Fault::ServerError(502)));
        assert_eq!(queue.take("GET /app"), None);
        assert_eq!(queue.pending(), 0);
    }

    #[test]
    fn a_fault_for_one_route_leaves_other_routes_alone() {
        let mut queue = FaultQueue::default();
        queue.push(Some("GET /app"), Fault::Disconnect, 1);
        queue.push(None, Fault::ServerError(500), 1);
        assert_eq!(queue.take("GET /user"), Some(Fault::ServerError(500)));
        assert_eq!(queue.take("GET /user"), None);
        assert_eq!(queue.take("GET /app"), Some(Fault::Disconnect));
    }

    #[test]
    fn random_faults_come_at_about_their_rates_and_queued_ones_go_first() {
        let mut queue = FaultQueue::default();
        queue.set_rates(FaultRates {
            server_error: 0.3,
            rate_limited: 0.05,
            retry_after_secs: 2,
        });
        queue.push(None, Fault::Disconnect, 1);
        assert_eq!(queue.take("GET /app"), Some(Fault::Disconnect));
        let drawn: Vec<_> = (0..10_000).filter_map(|_| queue.take("GET /app")).collect();
        let errors = drawn
            .iter()
            .filter(|f| **f == Fault::ServerError(502))
            .count();
        let limited = drawn.len() - errors;
        assert!((2_700..3_300).contains(&errors), "{errors} server errors");
        assert!((350..650).contains(&limited), "{limited} rate limits");
        queue.clear();
        assert_eq!(queue.take("GET /app"), None);
    }

    #[test]
    fn the_primary_limit_refuses_once_the_window_is_used_and_resets_an_hour_later() {
        let mut window = RateWindow::new(2);
        assert!(window.take(100));
        assert!(window.take(101));
        assert!(!window.take(102));
        let reply = window.exhausted(102);
        assert_eq!(reply.status, 403);
        assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(reply.header("x-ratelimit-reset"), Some("3700"));
        assert!(window.take(3_700));
        assert_eq!(window.headers(3_700)[1].1, "1");
    }

    #[test]
    fn a_secondary_limit_carries_retry_after_and_an_empty_window() {
        let fault = Fault::SecondaryRateLimited {
            status: 429,
            retry_after_secs: 30,
        };
        let reply = fault_reply(&fault, 1_000, 5_000).expect("a reply");
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("30"));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(reply.header("x-ratelimit-reset"), Some("1030"));
    }
}
