//! Time to exhaustion: a least-squares trend over recent points of a bounded resource, and the
//! time at which it reaches its limit, with a band from the fit's residuals.

use cellwarden_models::{Sample, Timestamp};

/// Parameters, one set for every series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastParams {
    /// Points in the trend fit.
    pub points: usize,
    /// Warn when exhaustion is predicted within this many seconds.
    pub horizon_secs: f64,
    /// The fit must explain at least this share of the variance (R²) to be trusted.
    pub min_r2: f64,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            points: 20,
            horizon_secs: 3600.0,
            min_r2: 0.8,
        }
    }
}

/// A forecast that a resource reaches its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhaustion {
    /// When the trend line reaches the limit.
    pub at: Timestamp,
    /// Earliest plausible time: the trend shifted up by two residual standard deviations.
    pub earliest: Timestamp,
    /// Units per second.
    pub slope_per_sec: f64,
    pub r2: f64,
}

/// Fits the last `params.points` samples and predicts when `limit` is reached, if within the horizon.
pub fn time_to_exhaustion(recent: &[Sample], limit: f64, params: &ForecastParams) -> Option<Exhaustion> {
    if recent.len() < params.points.max(3) || limit.is_nan() || limit <= 0.0 {
        return None;
    }
    let pts = &recent[recent.len() - params.points..];
    let t0 = pts[0].t;
    let n = pts.len() as f64;
    let xs: Vec<f64> = pts.iter().map(|p| p.t.secs_since(t0)).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = pts.iter().map(|p| p.value).sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(pts).map(|(x, p)| (x - mx) * (p.value - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.value - my).powi(2)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    if slope <= 0.0 {
        return None;
    }
    let r2 = (sxy * sxy) / (sxx * syy);
    if r2 < params.min_r2 {
        return None;
    }
    let intercept = my - slope * mx;
    let resid_sd = ((syy - slope * sxy).max(0.0) / (n - 2.0)).sqrt();
    let now_x = *xs.last().expect("non-empty");
    let secs_left = (limit - intercept) / slope - now_x;
    if secs_left > params.horizon_secs {
        return None;
    }
    let earliest_left = (limit - intercept - 2.0 * resid_sd) / slope - now_x;
    let last = pts.last().expect("non-empty").t;
    Some(Exhaustion {
        at: last.plus_secs(secs_left.max(0.0) as i64),
        earliest: last.plus_secs(earliest_left.max(0.0) as i64),
        slope_per_sec: slope,
        r2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, start: f64, per_min: f64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                t: Timestamp(i as i64 * 60_000),
                value: start + per_min * i as f64 + if i % 2 == 0 { 0.5 } else { -0.5 },
            })
            .collect()
    }

    #[test]
    fn memory_slope_warns_before_limit() {
        // 100 units now, +2 per minute, limit 200: 50 minutes left after the last point.
        let pts = ramp(20, 62.0, 2.0);
        let e = time_to_exhaustion(&pts, 200.0, &ForecastParams::default()).expect("a warning");
        let mins = e.at.secs_since(pts.last().unwrap().t) / 60.0;
        assert!((mins - 50.0).abs() < 1.5, "{mins}");
        assert!(e.earliest <= e.at);
    }

    #[test]
    fn flat_or_far_usage_does_not_warn() {
        assert!(time_to_exhaustion(&ramp(20, 100.0, 0.0), 200.0, &ForecastParams::default()).is_none());
        // +0.01 per minute: thousands of minutes away, beyond the one-hour horizon.
        assert!(time_to_exhaustion(&ramp(20, 100.0, 0.01), 200.0, &ForecastParams::default()).is_none());
    }
}
