//! Simulated time and unit conversions.
//!
//! Simulated time is an integer count of nanoseconds since the start of the simulation ([`SimTime`]).
//! Floating-point seconds appear only at the edges: in configs (rates, trace timestamps) and in outputs
//! (columns named `*_s`). Conversions round to the nearest nanosecond, so a value read from a config maps
//! to exactly one instant, whatever the platform.

/// Simulated time in nanoseconds since the start of the run.
pub type SimTime = u64;

/// Nanoseconds in one second.
pub const NS_PER_S: u64 = 1_000_000_000;

/// The latest instant a workload may place an arrival at: 100 years, in seconds. Integer nanoseconds
/// hold about 584 years; the rest is the room every later event (a stage, a host wait) needs, so that
/// no sum of simulated times can wrap. An arrival beyond it is refused up front, naming the field.
pub const MAX_ARRIVAL_S: f64 = 100.0 * 365.25 * 86_400.0;

/// Seconds to nanoseconds when the instant lies in `[0, MAX_ARRIVAL_S]`; `None` otherwise (negative,
/// not finite, or past the horizon).
pub fn arrival_ns(s: f64) -> Option<SimTime> {
    (s.is_finite() && (0.0..=MAX_ARRIVAL_S).contains(&s)).then(|| secs_to_ns(s))
}

/// Seconds (finite, non-negative) to nanoseconds, rounded to nearest. Values beyond `u64::MAX` ns
/// (about 584 years) saturate; callers validate ranges before converting.
pub fn secs_to_ns(s: f64) -> SimTime {
    let ns = (s * NS_PER_S as f64).round();
    if ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

/// Nanoseconds to seconds.
pub fn ns_to_secs(ns: SimTime) -> f64 {
    ns as f64 / NS_PER_S as f64
}

/// Nanoseconds (possibly fractional, from a model) to whole nanoseconds, at least 1 so that every piece of
/// work takes time and the event loop always moves forward.
pub fn duration_ns(ns: f64) -> SimTime {
    if !ns.is_finite() || ns < 1.0 {
        1
    } else {
        ns.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_seconds() {
        assert_eq!(secs_to_ns(1.5), 1_500_000_000);
        assert_eq!(ns_to_secs(2_500_000_000), 2.5);
        assert_eq!(secs_to_ns(0.0), 0);
    }

    #[test]
    fn rounds_to_nearest_nanosecond() {
        assert_eq!(secs_to_ns(1e-9 * 0.4), 0);
        assert_eq!(secs_to_ns(1e-9 * 0.6), 1);
        assert_eq!(secs_to_ns(4.314579), 4_314_579_000);
    }

    #[test]
    fn durations_are_at_least_one_nanosecond() {
        assert_eq!(duration_ns(0.0), 1);
        assert_eq!(duration_ns(f64::NAN), 1);
        assert_eq!(duration_ns(2.6), 3);
    }
}
