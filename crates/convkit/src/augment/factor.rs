//! The random ranges of the augmentation layers, written as Keras writes them: one number
//! `f` for `[-f, f]`, or a `[lower, upper]` pair.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// A range of random amounts. In JSON, a number (`0.1`) or a pair (`[-0.2, 0.3]`).
///
/// Each layer says what the amount means (a fraction of a full turn, of the image size, ...)
/// and which values it accepts.
///
/// ```
/// use convkit::augment::Factor;
///
/// assert_eq!(Factor::from(0.1).bounds(), (-0.1, 0.1));
/// assert_eq!(Factor::from((-0.2, 0.3)).bounds(), (-0.2, 0.3));
/// let json = serde_json::to_string(&Factor::Range(-0.2, 0.3)).unwrap();
/// assert_eq!(json, "[-0.2,0.3]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Factor {
    /// `[-|f|, |f|]`.
    Symmetric(f64),
    /// `[lower, upper]`; `lower` must not exceed `upper`.
    Range(f64, f64),
}

impl From<f64> for Factor {
    fn from(f: f64) -> Self {
        Factor::Symmetric(f)
    }
}

impl From<(f64, f64)> for Factor {
    fn from((lower, upper): (f64, f64)) -> Self {
        Factor::Range(lower, upper)
    }
}

impl Factor {
    /// The range as `(lower, upper)`.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            Factor::Symmetric(f) => (-f.abs(), f.abs()),
            Factor::Range(lower, upper) => (lower, upper),
        }
    }

    /// The bounds, after checking that they are finite, ordered and within `[min, max]`;
    /// `what` names the setting in the error (`"random_zoom height_factor"`).
    pub(crate) fn checked_bounds(self, what: &str, min: f64, max: f64) -> Result<(f64, f64)> {
        let (lower, upper) = self.bounds();
        if !lower.is_finite() || !upper.is_finite() {
            return Err(Error::InvalidConfig(format!(
                "{what} must be finite, got {self:?}"
            )));
        }
        if lower > upper {
            return Err(Error::InvalidConfig(format!(
                "{what}: the lower bound {lower} exceeds the upper bound {upper}"
            )));
        }
        if lower < min || upper > max {
            return Err(Error::InvalidConfig(format!(
                "{what} must lie in [{min}, {max}], got [{lower}, {upper}]"
            )));
        }
        Ok((lower, upper))
    }
}

/// `n` values drawn uniformly from `[lower, upper)` by libtorch's generator (so that
/// `tch::manual_seed` repeats them), as `f32` on `device`. `lower == upper` gives exactly
/// `lower`.
pub(crate) fn uniform((lower, upper): (f64, f64), n: i64, device: Device) -> Tensor {
    Tensor::rand([n], (Kind::Float, device)) * (upper - lower) + lower
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_number_is_symmetric_and_ignores_its_sign() {
        assert_eq!(Factor::Symmetric(-0.2).bounds(), (-0.2, 0.2));
    }

    #[test]
    fn json_is_a_number_or_a_pair() {
        let single: Factor = serde_json::from_str("0.25").unwrap();
        assert_eq!(single, Factor::Symmetric(0.25));
        let whole: Factor = serde_json::from_str("1").unwrap();
        assert_eq!(whole, Factor::Symmetric(1.0));
        let pair: Factor = serde_json::from_str("[-0.5, 0.25]").unwrap();
        assert_eq!(pair, Factor::Range(-0.5, 0.25));
        assert!(serde_json::from_str::<Factor>("[1, 2, 3]").is_err());
    }

    #[test]
    fn checks_order_range_and_finiteness() {
        let check = |f: Factor| f.checked_bounds("f", -1.0, 1.0);
        assert_eq!(check(Factor::Range(-0.5, 0.5)).unwrap(), (-0.5, 0.5));
        let err = check(Factor::Range(0.3, 0.1)).unwrap_err().to_string();
        assert!(err.contains("exceeds"), "{err}");
        assert!(check(Factor::Symmetric(1.5)).is_err());
        assert!(check(Factor::Symmetric(f64::NAN)).is_err());
    }

    #[test]
    fn uniform_draws_stay_in_range() {
        let xs = uniform((-2.0, 3.0), 1000, Device::Cpu);
        assert!(xs.min().double_value(&[]) >= -2.0);
        assert!(xs.max().double_value(&[]) < 3.0);
        let fixed = uniform((0.25, 0.25), 4, Device::Cpu);
        assert_eq!(Vec::<f32>::try_from(fixed).unwrap(), [0.25; 4]);
    }
}
