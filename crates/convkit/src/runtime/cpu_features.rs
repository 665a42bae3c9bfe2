//! What the CPU can do for bf16, read from cpuid.

use std::sync::OnceLock;

/// The bf16 instructions of this CPU that the operating system lets programs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX512-BF16: bf16 dot products on 512-bit vectors (Intel Cooper Lake and later, AMD
    /// Zen 4 and later).
    pub avx512_bf16: bool,
    /// AMX-BF16: bf16 tile matrix multiplication (Intel Sapphire Rapids and later).
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// Whether oneDNN runs bf16 convolutions and matrix products in hardware here, rather
    /// than converting to fp32 and back (slower than fp32 itself).
    pub fn native_bf16(&self) -> bool {
        self.avx512_bf16 || self.amx_bf16
    }

    /// The instructions in a few words, for reports: `AMX-BF16, AVX512-BF16` or `none`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = [
            (self.amx_bf16, "AMX-BF16"),
            (self.avx512_bf16, "AVX512-BF16"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// This machine's [`CpuFeatures`], detected once.
pub fn cpu_features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> CpuFeatures {
    CpuFeatures {
        // The standard macro also checks that the OS saves the 512-bit registers.
        avx512_bf16: std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512bw"),
        amx_bf16: amx_bf16(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> CpuFeatures {
    CpuFeatures::default()
}

/// AMX-BF16 and AMX-TILE in cpuid leaf 7, and the tile state enabled by the OS in XCR0.
/// (`is_x86_feature_detected!("amx-bf16")` is not stable Rust yet.)
#[cfg(target_arch = "x86_64")]
fn amx_bf16() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // cpuid exists on every x86_64 CPU; leaf 7 is read only when the CPU has it.
    let (max_leaf, osxsave) = (__cpuid(0).eax, __cpuid(1).ecx & (1 << 27) != 0);
    if max_leaf < 7 || !osxsave {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let (amx_bf16, amx_tile) = (edx & (1 << 22) != 0, edx & (1 << 24) != 0);
    if !(amx_bf16 && amx_tile) {
        return false;
    }
    // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves the tile registers.
    // SAFETY: OSXSAVE is set, so xgetbv may be executed.
    let xcr0 = unsafe { xgetbv0() };
    xcr0 & (0b11 << 17) == 0b11 << 17
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    std::arch::x86_64::_xgetbv(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_agrees_with_the_kernel() {
        // /proc/cpuinfo lists what the kernel found and enabled.
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let flags: Vec<&str> = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let features = cpu_features();
        assert_eq!(
            features.avx512_bf16,
            flags.contains(&"avx512_bf16"),
            "{features:?}"
        );
        assert_eq!(
            features.amx_bf16,
            flags.contains(&"amx_bf16"),
            "{features:?}"
        );
        assert_eq!(
            features.native_bf16(),
            flags.contains(&"avx512_bf16") || flags.contains(&"amx_bf16")
        );
    }

    #[test]
    fn describes_itself() {
        assert_eq!(CpuFeatures::default().describe(), "none");
        let both = CpuFeatures {
            avx512_bf16: true,
            amx_bf16: true,
        };
        assert_eq!(both.describe(), "AMX-BF16, AVX512-BF16");
    }
}
