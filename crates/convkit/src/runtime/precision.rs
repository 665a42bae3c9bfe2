//! The numeric precision a model computes in: fp32, or bf16 mixed precision.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::cpu_features::cpu_features;
use super::ffi;
use crate::error::{Error, Result};

/// How a model computes.
///
/// `Bf16` means what `torch.autocast(device, dtype=torch.bfloat16)` means: parameters, their
/// gradients and the optimizer state stay fp32; convolutions and matrix products run in
/// bf16 (8 bits of mantissa, fp32's range); the loss, the metrics and reductions are fp32.
/// On CPUs with AMX or AVX512-BF16 and on CUDA GPUs of compute capability 8.0 or later that
/// is several times faster than fp32; elsewhere it runs, correctly, but slower.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in fp32.
    #[default]
    Fp32,
    /// bf16 mixed precision (autocast).
    Bf16,
    /// bf16 where the device runs it natively ([`bf16_is_native`]), else fp32.
    Auto,
}

/// Names accepted by [`Precision::from_str`].
pub const PRECISION_NAMES: &[&str] = &["fp32", "bf16", "auto"];

impl Precision {
    /// The precision used on `device`: `Auto` becomes `Bf16` or `Fp32`, the others stay.
    pub fn resolve(self, device: Device) -> Precision {
        match self {
            Precision::Auto if bf16_is_native(device) => Precision::Bf16,
            Precision::Auto => Precision::Fp32,
            other => other,
        }
    }

    /// `fp32`, `bf16` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Auto => "auto",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(text: &str) -> Result<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "auto" => Ok(Precision::Auto),
            other => Err(Error::InvalidConfig(format!(
                "unknown precision `{other}`: use {}",
                PRECISION_NAMES.join(", ")
            ))),
        }
    }
}

/// Whether `device` runs bf16 matrix products in hardware: a CPU with AMX-BF16 or
/// AVX512-BF16 (cpuid), a CUDA GPU of compute capability 8.0 (Ampere) or later.
pub fn bf16_is_native(device: Device) -> bool {
    match device {
        Device::Cpu => cpu_features().native_bf16(),
        Device::Cuda(index) => cuda_compute_capability(index).is_some_and(|cc| cc >= (8, 0)),
        _ => false,
    }
}

/// The compute capability `(major, minor)` of CUDA device `index`, when there is one.
pub fn cuda_compute_capability(index: usize) -> Option<(u32, u32)> {
    if index >= tch::Cuda::device_count().max(0) as usize {
        return None;
    }
    // SAFETY: asks the CUDA runtime libtorch loaded; returns -1 when there is none.
    let packed = unsafe { ffi::convkit_cuda_compute_capability(index as i32) };
    (packed >= 0).then_some((packed as u32 / 10, packed as u32 % 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_its_names() {
        for name in PRECISION_NAMES {
            assert_eq!(name.parse::<Precision>().unwrap().name(), *name);
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        let err = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(err.contains("fp32, bf16, auto"), "{err}");
        assert_eq!(serde_json::to_string(&Precision::Bf16).unwrap(), "\"bf16\"");
    }

    #[test]
    fn auto_follows_the_hardware() {
        let cpu = Precision::Auto.resolve(Device::Cpu);
        let expected = if cpu_features().native_bf16() {
            Precision::Bf16
        } else {
            Precision::Fp32
        };
        assert_eq!(cpu, expected);
        assert_eq!(Precision::Bf16.resolve(Device::Cpu), Precision::Bf16);
        assert_eq!(Precision::Fp32.resolve(Device::Cpu), Precision::Fp32);
        if tch::Cuda::device_count() == 0 {
            assert_eq!(cuda_compute_capability(0), None);
            assert!(!bf16_is_native(Device::Cuda(0)));
        } else {
            assert!(cuda_compute_capability(0).is_some());
        }
    }
}
