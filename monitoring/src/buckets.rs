//! Histogram bucket layouts shared by the subsystems, so the same kind of
//! measurement is bucketed the same way everywhere and dashboards can
//! compare them.

/// Upper bounds for latencies in seconds, from 50µs to 10s in roughly
/// 1-2.5-5 steps: wide enough for a single EVM call and for a stalled L1
/// round trip alike.
pub fn latency_seconds() -> Vec<f64> {
    vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// Upper bounds for intervals between recurring events in seconds (block
/// intervals: 50 ms blocks up to a 60 s block time or an idle chain's empty
/// block every 12 s), from 5ms to 60s.
pub fn interval_seconds() -> Vec<f64> {
    vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0,
    ]
}

/// Upper bounds for counts (transactions per block, batch sizes) in 1-2-5
/// steps from 1 up to the first step that reaches `max`.
pub fn counts(max: u64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade: u64 = 1;
    loop {
        for step in [1, 2, 5] {
            let Some(bound) = decade.checked_mul(step) else {
                return out;
            };
            out.push(bound as f64);
            if bound >= max {
                return out;
            }
        }
        let Some(next) = decade.checked_mul(10) else {
            return out;
        };
        decade = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strictly_increasing(b: &[f64]) -> bool {
        b.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn latency_range() {
        let b = latency_seconds();
        assert!(strictly_increasing(&b));
        assert_eq!(b.first(), Some(&0.000_05));
        assert_eq!(b.last(), Some(&10.0));
    }

    #[test]
    fn interval_range() {
        let b = interval_seconds();
        assert!(strictly_increasing(&b));
        // The config allows block times from 50 ms to 60 s.
        assert!(b[0] < 0.05 && *b.last().unwrap() >= 60.0);
    }

    #[test]
    fn counts_reach_max() {
        assert_eq!(counts(0), [1.0]);
        assert_eq!(counts(1), [1.0]);
        assert_eq!(counts(3), [1.0, 2.0, 5.0]);
        assert_eq!(
            counts(1000),
            [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        let b = counts(50_000);
        assert!(strictly_increasing(&b));
        assert_eq!(b.last(), Some(&50_000.0));
        assert!(strictly_increasing(&counts(u64::MAX)));
    }
}
