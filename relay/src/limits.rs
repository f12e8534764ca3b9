//! Per-device rate limiting: a token bucket per (firm, device).

use ledgerline_protocol::ids::{DeviceId, FirmId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets keyed by device.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<(FirmId, DeviceId), (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token; `false` when the device is over its limit.
    pub fn allow(&self, firm: FirmId, device: DeviceId) -> bool {
        self.allow_at(firm, device, Instant::now())
    }

    fn allow_at(&self, firm: FirmId, device: DeviceId, now: Instant) -> bool {
        let Ok(mut map) = self.buckets.lock() else {
            return true;
        };
        let (tokens, last) = map.entry((firm, device)).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(10, 3);
        let t = Instant::now();
        let (f, d) = (FirmId([1; 16]), DeviceId([2; 16]));
        assert!((0..3).all(|_| l.allow_at(f, d, t)));
        assert!(!l.allow_at(f, d, t));
        assert!(
            l.allow_at(FirmId([1; 16]), DeviceId([3; 16]), t),
            "buckets are per device"
        );
        assert!(l.allow_at(f, d, t + Duration::from_millis(100)));
        assert!(!l.allow_at(f, d, t + Duration::from_millis(100)));
    }
}
