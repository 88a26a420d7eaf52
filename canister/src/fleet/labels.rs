//! Labels: free-form `key = value` pairs an administrator puts on children (tenant, tier,
//! region...) to list and select them.
//!
//! Sizes are bounded because every label is also a key of the secondary index, and counts are
//! bounded so that the labels of one child, and a page of children, stay small.

use std::collections::BTreeMap;

use candid::{CandidType, Deserialize};
use serde::Serialize;

use super::error::FleetError;

/// Longest label key, in UTF-8 bytes (at least 1).
pub const MAX_LABEL_KEY_BYTES: usize = 64;
/// Longest label value, in UTF-8 bytes (may be empty).
pub const MAX_LABEL_VALUE_BYTES: usize = 128;
/// Most labels on one child, and most labels in one filter.
pub const MAX_LABELS_PER_CHILD: usize = 16;

/// One label, as requests name it and replies show it.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl Label {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A child's labels, by key. Stored as a CBOR map.
pub type Labels = BTreeMap<String, String>;

/// Checks the count first (so an oversized request costs little), then each label, and that no
/// key repeats.
pub(super) fn validate(labels: &[Label]) -> Result<Labels, FleetError> {
    if labels.len() > MAX_LABELS_PER_CHILD {
        return Err(too_many(labels.len()));
    }
    let mut valid = Labels::new();
    for label in labels {
        let key_length = label.key.len();
        if key_length == 0 || key_length > MAX_LABEL_KEY_BYTES {
            return Err(FleetError::LabelKeyLength {
                key: cut(&label.key, MAX_LABEL_KEY_BYTES),
                length: key_length as u64,
                max: MAX_LABEL_KEY_BYTES as u64,
            });
        }
        if label.value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(FleetError::LabelValueLength {
                key: label.key.clone(),
                length: label.value.len() as u64,
                max: MAX_LABEL_VALUE_BYTES as u64,
            });
        }
        if valid
            .insert(label.key.clone(), label.value.clone())
            .is_some()
        {
            return Err(FleetError::RepeatedLabelKey {
                key: label.key.clone(),
            });
        }
    }
    Ok(valid)
}

pub(super) fn too_many(count: usize) -> FleetError {
    FleetError::TooManyLabels {
        count: count as u64,
        max: MAX_LABELS_PER_CHILD as u64,
    }
}

pub(super) fn to_list(labels: &Labels) -> Vec<Label> {
    labels
        .iter()
        .map(|(key, value)| Label::new(key, value))
        .collect()
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary, so an
/// error never echoes an oversized key back in full.
fn cut(text: &str, max: usize) -> String {
    crate::text::prefix(text, max).to_owned()
}
