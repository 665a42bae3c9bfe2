//! Choosing where tensors live and how many CPU threads libtorch uses.

use tch::Device;

use crate::error::{Error, Result};

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`. `auto` (and an empty string) means the first
/// CUDA device when one is available, else the CPU. Asking for a CUDA device that does not
/// exist is an error, not a silent fall-back.
pub fn parse_device(text: &str) -> Result<Device> {
    let text = text.trim().to_ascii_lowercase();
    let device = match text.as_str() {
        "" | "auto" => return Ok(Device::cuda_if_available()),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => Device::Cuda(index),
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "unknown device `{text}`: use auto, cpu, cuda or cuda:N"
                )))
            }
        },
    };
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            return Err(Error::InvalidConfig(format!(
                "device cuda:{index} requested but libtorch sees {count} CUDA device(s)"
            )));
        }
    }
    Ok(device)
}

/// `cpu` or `cuda:N`, as [`parse_device`] reads it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(index) => format!("cuda:{index}"),
        Device::Mps => "mps".to_owned(),
        Device::Vulkan => "vulkan".to_owned(),
        _ => "cpu".to_owned(),
    }
}

/// Sets libtorch's intra-op thread count: `threads`, else `OMP_NUM_THREADS` when it is set
/// (torchrun sets it to 1 when it starts several processes on one machine), else every core
/// the process may use. Returns the count in force.
pub fn set_threads(threads: Option<usize>) -> usize {
    let from_env = || {
        std::env::var("OMP_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    let n = threads
        .filter(|&n| n > 0)
        .or_else(|| from_env().filter(|&n| n > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(n as i32);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_names() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("CPU").unwrap(), Device::Cpu);
        let auto = parse_device("auto").unwrap();
        assert_eq!(auto, Device::cuda_if_available());
        assert!(parse_device("tpu")
            .unwrap_err()
            .to_string()
            .contains("unknown device `tpu`"));
        assert!(parse_device("cuda:x").is_err());
    }

    #[test]
    fn a_missing_cuda_device_is_an_error() {
        let count = tch::Cuda::device_count();
        let err = parse_device(&format!("cuda:{count}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CUDA device"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(device_name(Device::Cpu), "cpu");
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
    }

    #[test]
    fn threads_default_to_all_cores() {
        let n = set_threads(None);
        assert_eq!(n, std::thread::available_parallelism().unwrap().get());
        assert_eq!(tch::get_num_threads() as usize, n);
    }
}
