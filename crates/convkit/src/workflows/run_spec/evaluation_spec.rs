//! How a run measures the checkpoint it keeps, once training ends.

use serde::{Deserialize, Serialize};

use crate::train::Tta;

/// How a run measures its kept checkpoint on the validation and test data when it ends
/// (the scores of `metrics.json`). Training and its per-epoch validation are not affected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationSpec {
    /// Test-time augmentation of the final evaluation ([`Tta::None`] in descriptions
    /// written before convkit had it).
    #[serde(default)]
    pub tta: Tta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_setting_reads_as_no_augmentation() {
        let spec: EvaluationSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec.tta, Tta::None);
        let spec: EvaluationSpec = serde_json::from_str(r#"{"tta": "horizontal_flip"}"#).unwrap();
        assert_eq!(spec.tta, Tta::HorizontalFlip);
        assert!(serde_json::from_str::<EvaluationSpec>(r#"{"tta": "vertical_flip"}"#).is_err());
    }
}
