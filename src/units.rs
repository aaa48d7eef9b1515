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
        round_ns(ns)
    }
}

/// `ns` rounded to the nearest whole nanosecond (halves away from zero), negative and NaN values to
/// 0 and values beyond `u64` to its maximum, as `ns.round() as u64` gives them, without the libm call
/// the loop would pay several times for every stage: from 1 to 2^52 adding 0.5 is exact, so
/// truncating the sum rounds as `round` does.
pub fn round_ns(ns: f64) -> u64 {
    if (1.0..EXACT_HALF_UP_BELOW).contains(&ns) {
        (ns + 0.5) as u64
    } else {
        ns.round() as u64
    }
}

/// Below this, `x + 0.5` is exact for every f64 `x >= 1` (2^52: the spacing of f64 reaches 1).
const EXACT_HALF_UP_BELOW: f64 = 4_503_599_627_370_496.0;

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

    #[test]
    fn the_fast_rounding_of_durations_is_rounds() {
        let mut xs = vec![
            1.0,
            1.5,
            2.5,
            3.5,
            0.5f64.next_up() + 1.0,
            1.5f64.next_down(),
        ];
        for k in 0..53 {
            let p = (1u64 << k) as f64;
            for x in [
                p,
                p + 0.5,
                p - 0.5,
                (p - 0.5).next_down(),
                (p + 0.5).next_down(),
            ] {
                xs.push(x);
                xs.push(x.next_up());
            }
        }
        // A fixed pseudo-random spread over every magnitude.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            xs.push((1.0 + mantissa) * 2f64.powi((state % 60) as i32));
        }
        for x in xs.into_iter().filter(|x| *x >= 1.0) {
            assert_eq!(duration_ns(x), x.round() as u64, "{x:e}");
        }
        for x in [
            0.0,
            0.49999999999999994,
            0.5,
            -0.5,
            -3.0,
            f64::NAN,
            1e300,
            f64::INFINITY,
        ] {
            assert_eq!(round_ns(x), x.round() as u64, "{x:e}");
        }
    }
}
