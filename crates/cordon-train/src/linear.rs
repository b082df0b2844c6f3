//! One-vs-rest logistic regression over hashed features, trained by SGD.

use cordon_domain::Category;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Training hyper-parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SgdConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Initial step size; it decays linearly to a tenth over the epochs.
    pub learning_rate: f32,
    /// L2 penalty applied to the weights an example touches.
    pub l2: f32,
    /// Shuffle seed.
    pub seed: u64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            epochs: 8,
            learning_rate: 0.2,
            l2: 1e-5,
            seed: 42,
        }
    }
}

/// A trained model: `weights` row-major `[buckets, categories]` with row 0 (padding) zero.
#[derive(Debug, Clone)]
pub struct LinearModel {
    /// The weight table.
    pub weights: Vec<f32>,
    /// One bias per category.
    pub bias: Vec<f32>,
    /// Rows in the table.
    pub buckets: usize,
}

const C: usize = Category::ALL.len();

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearModel {
    /// Trains on `(feature ids, label)` pairs.
    pub fn train(
        data: &[(Vec<u32>, Option<Category>)],
        buckets: usize,
        cfg: &SgdConfig,
    ) -> LinearModel {
        let mut model = LinearModel {
            weights: vec![0.0; buckets * C],
            bias: vec![-2.0; C],
            buckets,
        };
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        for epoch in 0..cfg.epochs {
            order.shuffle(&mut rng);
            let progress = epoch as f32 / cfg.epochs.max(1) as f32;
            let lr = cfg.learning_rate * (1.0 - 0.9 * progress);
            for &i in &order {
                let (ids, label) = &data[i];
                let probs = model.predict(ids);
                for (c, p) in probs.iter().enumerate() {
                    let y = if label.map(Category::index) == Some(c) {
                        1.0
                    } else {
                        0.0
                    };
                    let g = p - y;
                    model.bias[c] -= lr * g;
                    for &id in ids {
                        let w = &mut model.weights[id as usize * C + c];
                        *w -= lr * (g + cfg.l2 * *w);
                    }
                }
            }
        }
        model
    }

    /// Probabilities per category for one feature set (the same function the ONNX graph computes).
    pub fn predict(&self, ids: &[u32]) -> [f32; C] {
        let mut z = [0f32; C];
        z.copy_from_slice(&self.bias);
        for &id in ids {
            let row = &self.weights[id as usize * C..id as usize * C + C];
            for c in 0..C {
                z[c] += row[c];
            }
        }
        z.map(sigmoid)
    }
}
