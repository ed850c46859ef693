//! A multivariate model of one service or pod: principal components (linfa's PCA) of its
//! standardised signals — memory, CPU, latency, error ratio, queue lag, request rate — learned on
//! a baseline window. A row that the components cannot reconstruct breaks the usual relations
//! between the signals (CPU up while requests are flat, latency up with no load), even when no
//! single signal is out of its own range. The score says how far, the contributions say which
//! signals drove it.
//!
//! The learned state serialises to JSON: the daemon caches it and retrains from history when the
//! cache is gone. Saving and loading are the caller's IO.

use cellwarden_models::Signal;
use linfa::prelude::*;
use linfa_reduction::Pca;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// Why a model could not be trained or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Too few rows, or rows of the wrong width.
    #[error("cannot train on {rows} rows of {features} features: {reason}")]
    BadTrainingData { rows: usize, features: usize, reason: String },
    /// linfa's PCA failed.
    #[error("PCA failed: {0}")]
    Pca(String),
    /// The cached state is not a model of this version.
    #[error("not a cached model: {0}")]
    Load(#[source] serde_json::Error),
}

/// Parameters of training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelParams {
    /// Principal components kept (at most features − 1).
    pub components: usize,
    /// Rows needed to train.
    pub min_rows: usize,
    /// A standardised feature's spread is at least this (so a constant signal is not infinitely sensitive).
    pub min_sd_fraction: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            components: 2,
            min_rows: 30,
            min_sd_fraction: 0.05,
        }
    }
}

/// The learned state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateModel {
    /// Format version of the cached state.
    pub version: u32,
    pub features: Vec<Signal>,
    /// Baseline mean and spread of each feature, for standardising.
    pub feature_mean: Vec<f64>,
    pub feature_sd: Vec<f64>,
    /// PCA mean and components (rows are components) in standardised space.
    pub pca_mean: Vec<f64>,
    pub components: Vec<Vec<f64>>,
    /// The 99th percentile of the baseline's reconstruction error: a row at this error scores 0.5.
    pub error_p99: f64,
    pub trained_rows: usize,
}

/// The verdict on one row.
#[derive(Debug, Clone, PartialEq)]
pub struct MultivariateScore {
    /// Squared reconstruction error in standardised units.
    pub error: f64,
    /// In [0, 1]; 0.5 at the baseline's 99th percentile of error.
    pub score: f64,
    /// Each feature's share of the error, largest first, with observed and expected values.
    pub contributions: Vec<Contribution>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: Signal,
    pub share: f64,
    pub observed: f64,
    pub expected: f64,
}

const MODEL_VERSION: u32 = 1;

impl MultivariateModel {
    /// Trains on `rows` (each `features.len()` wide, all finite), e.g. the last hours of a service.
    pub fn train(features: Vec<Signal>, rows: &[Vec<f64>], params: &ModelParams) -> Result<MultivariateModel, ModelError> {
        let d = features.len();
        let bad = |reason: &str| ModelError::BadTrainingData {
            rows: rows.len(),
            features: d,
            reason: reason.into(),
        };
        if d < 2 {
            return Err(bad("need at least two features"));
        }
        if rows.len() < params.min_rows.max(d + 1) {
            return Err(bad("too few rows"));
        }
        if rows.iter().any(|r| r.len() != d || r.iter().any(|v| !v.is_finite())) {
            return Err(bad("a row has the wrong width or a non-finite value"));
        }
        let n = rows.len() as f64;
        let mean: Vec<f64> = (0..d).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let sd: Vec<f64> = (0..d)
            .map(|j| {
                let var = rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                var.sqrt().max(params.min_sd_fraction * mean[j].abs()).max(1e-9)
            })
            .collect();
        let z = Array2::from_shape_fn((rows.len(), d), |(i, j)| (rows[i][j] - mean[j]) / sd[j]);
        let k = params.components.clamp(1, d - 1);
        let pca = Pca::params(k)
            .whiten(false)
            .fit(&DatasetBase::from(z.clone()))
            .map_err(|e| ModelError::Pca(e.to_string()))?;
        let mut model = MultivariateModel {
            version: MODEL_VERSION,
            features,
            feature_mean: mean,
            feature_sd: sd,
            pca_mean: pca.mean().to_vec(),
            components: pca.components().outer_iter().map(|c| c.to_vec()).collect(),
            error_p99: 0.0,
            trained_rows: rows.len(),
        };
        let mut errors: Vec<f64> = z
            .outer_iter()
            .map(|row| model.residual(&row.to_owned()).iter().map(|r| r * r).sum())
            .collect();
        errors.sort_by(f64::total_cmp);
        let idx = ((errors.len() as f64 * 0.99).ceil() as usize).min(errors.len()) - 1;
        // A floor: a baseline the components fit perfectly must not make every wiggle an outlier.
        model.error_p99 = errors[idx].max(0.1 * d as f64 * 0.01).max(1e-3);
        Ok(model)
    }

    fn residual(&self, z: &Array1<f64>) -> Array1<f64> {
        let centred = z - &Array1::from(self.pca_mean.clone());
        let mut recon: Array1<f64> = Array1::zeros(centred.len());
        for c in &self.components {
            let c = Array1::from(c.clone());
            recon = recon + &c * centred.dot(&c);
        }
        centred - recon
    }

    /// Scores one row (same features, same order as trained).
    pub fn score(&self, row: &[f64]) -> MultivariateScore {
        let d = self.features.len();
        let z = Array1::from_shape_fn(d, |j| {
            (row.get(j).copied().unwrap_or(f64::NAN) - self.feature_mean[j]) / self.feature_sd[j]
        });
        let res = self.residual(&z);
        let error: f64 = res.iter().map(|r| r * r).sum();
        let expected_z = &z - &res;
        let mut contributions: Vec<Contribution> = (0..d)
            .map(|j| Contribution {
                feature: self.features[j],
                share: if error > 0.0 { res[j] * res[j] / error } else { 0.0 },
                observed: row.get(j).copied().unwrap_or(f64::NAN),
                expected: self.feature_mean[j] + expected_z[j] * self.feature_sd[j],
            })
            .collect();
        contributions.sort_by(|a, b| b.share.total_cmp(&a.share));
        let ratio = if error.is_finite() { error / self.error_p99 } else { f64::INFINITY };
        MultivariateScore {
            error,
            score: ratio / (ratio + 1.0),
            contributions,
        }
    }

    /// The cached form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model always serialises")
    }

    /// Loads a cached model; an old or foreign cache is an error (retrain from history then).
    pub fn from_json(text: &str) -> Result<MultivariateModel, ModelError> {
        let m: MultivariateModel = serde_json::from_str(text).map_err(ModelError::Load)?;
        if m.version != MODEL_VERSION {
            return Err(ModelError::Load(serde::de::Error::custom(format!(
                "cache version {} is not {MODEL_VERSION}",
                m.version
            ))));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU follows requests (0.01 core per request/s), latency is flat; memory wanders a little.
    fn baseline() -> Vec<Vec<f64>> {
        (0..200)
            .map(|i| {
                let rps = 50.0 + 30.0 * (i as f64 / 20.0).sin();
                let wiggle = ((i * 37) % 11) as f64 / 11.0 - 0.5;
                vec![rps, 0.01 * rps + 0.005 * wiggle, 0.020 + 0.001 * wiggle, 300.0 + 2.0 * wiggle]
            })
            .collect()
    }

    fn features() -> Vec<Signal> {
        vec![Signal::RequestRate, Signal::Cpu, Signal::Latency, Signal::Memory]
    }

    #[test]
    fn broken_relation_between_signals_is_flagged_and_explained() {
        let m = MultivariateModel::train(features(), &baseline(), &ModelParams::default()).unwrap();
        // On the usual relation, even at a load never seen: not anomalous.
        assert!(m.score(&[85.0, 0.85, 0.020, 300.0]).score < 0.5);
        // CPU doubles while requests stay where they were: each value is within its own range,
        // but together they are not.
        let s = m.score(&[40.0, 0.8, 0.020, 300.0]);
        assert!(s.score > 0.9, "{s:?}");
        assert_eq!(s.contributions[0].feature, Signal::Cpu);
        assert!(s.contributions[0].observed > s.contributions[0].expected);
    }

    #[test]
    fn model_saves_and_loads_to_the_same_verdicts() {
        let m = MultivariateModel::train(features(), &baseline(), &ModelParams::default()).unwrap();
        let cached = m.to_json();
        let back = MultivariateModel::from_json(&cached).unwrap();
        assert_eq!(back, m);
        for row in [[40.0, 0.8, 0.02, 300.0], [60.0, 0.6, 0.02, 301.0]] {
            assert_eq!(back.score(&row), m.score(&row));
        }
        assert!(MultivariateModel::from_json("{\"version\": 99}").is_err());
        let mut old: serde_json::Value = serde_json::from_str(&cached).unwrap();
        old["version"] = 0.into();
        assert!(MultivariateModel::from_json(&old.to_string()).is_err());
    }

    #[test]
    fn too_little_history_is_an_error_not_a_model() {
        let short: Vec<Vec<f64>> = baseline().into_iter().take(5).collect();
        assert!(matches!(
            MultivariateModel::train(features(), &short, &ModelParams::default()),
            Err(ModelError::BadTrainingData { .. })
        ));
        let mut bad = baseline();
        bad[3][1] = f64::NAN;
        assert!(MultivariateModel::train(features(), &bad, &ModelParams::default()).is_err());
    }
}
