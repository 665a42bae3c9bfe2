//! The machine that figures come from: a page of results names the CPU, its bf16 units
//! and the thread count, since numbers from different machines do not compare.

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::device::device_name;
use crate::runtime::cpu_features;

/// The machine a page's numbers come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model, as the operating system names it.
    pub cpu: String,
    /// Logical cores the process may use.
    pub cores: usize,
    /// libtorch's CPU threads.
    pub threads: usize,
    /// The device trained on: `cpu`, `cuda:0`.
    pub device: String,
    /// The CPU's bf16 matrix instructions (`none` on most CPUs).
    pub bf16: String,
}

impl Machine {
    /// This process's machine, computing on `device`.
    pub fn this(device: Device) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH));
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads: tch::get_num_threads().max(1) as usize,
            device: device_name(device),
            bf16: cpu_features().describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_this_cpu_and_its_threads() {
        let machine = Machine::this(Device::Cpu);
        assert!(!machine.cpu.is_empty());
        assert!(machine.cores >= 1 && machine.threads >= 1);
        assert_eq!(machine.device, "cpu");
    }
}
