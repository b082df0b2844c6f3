//! Text normalization and hashed n-gram featurization.
//!
//! The same code turns text into model inputs when Cordon trains its classifier and when it serves,
//! so the two can never disagree. A model records the [`FeatureConfig`] it was trained with (and its
//! [`FeatureConfig::fingerprint`]); the service refuses a model whose configuration it cannot reproduce.

mod features;
mod markup;
mod normalize;

pub use features::{
    FeatureConfig, FeatureError, Featurizer, NamedFeature, TextFeatures, FEATURIZER_VERSION,
    WINDOW_BUDGET,
};
pub use markup::strip_markup;
pub use normalize::normalize;
