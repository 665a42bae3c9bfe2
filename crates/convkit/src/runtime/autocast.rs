//! libtorch's autocast: mixed precision for the operations inside a scope.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::ptr;

use tch::{Device, Kind};

use super::ffi;
use super::precision::Precision;
use crate::error::{Error, Result};

/// While alive, operations on `device` run in `torch.autocast`'s mixed precision: the
/// operations that gain from it (convolutions, matrix products) cast their inputs to bf16,
/// those that need range or accuracy (losses, softmax, reductions) run in fp32, and the rest
/// follow their inputs. Parameters stay fp32; a parameter's bf16 copy is made once per
/// outermost guard and reused.
///
/// A guard for [`Precision::Fp32`] turns autocast off inside its scope. Guards nest and
/// restore the state they found when dropped, also when the guarded code returns an error
/// or panics; drop them in the reverse order of creation, as scopes do. The guard belongs to
/// its thread (libtorch's state is thread-local).
///
/// ```
/// use convkit::runtime::{Autocast, Precision};
/// use tch::{Device, Kind, Tensor};
/// let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
/// let product = {
///     let _bf16 = Autocast::new(Device::Cpu, Precision::Bf16)?;
///     a.matmul(&a)
/// };
/// assert_eq!(product.kind(), Kind::BFloat16);
/// assert_eq!(a.matmul(&a).kind(), Kind::Float);
/// # Ok::<(), convkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Autocast {
    state: *mut c_void,
    _not_send: PhantomData<*mut ()>,
}

fn device_type(device: Device) -> Result<c_int> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(Error::InvalidConfig(format!(
            "mixed precision is supported on the CPU and CUDA, not on {other:?}"
        ))),
    }
}

/// libtorch's number for a floating-point kind (c10::ScalarType).
fn scalar_type(kind: Kind) -> c_int {
    match kind {
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::BFloat16 => 15,
        other => unreachable!("autocast takes a float kind, not {other:?}"),
    }
}

impl Autocast {
    /// Autocast to bf16 on `device` for `Bf16` (and for `Auto` where bf16 is native), off for
    /// `Fp32`.
    pub fn new(device: Device, precision: Precision) -> Result<Autocast> {
        let enabled = precision.resolve(device) == Precision::Bf16;
        let mut state = ptr::null_mut();
        // SAFETY: the extension writes a heap state into `state` on success.
        ffi::check(unsafe {
            ffi::convkit_autocast_enter(
                device_type(device)?,
                scalar_type(Kind::BFloat16),
                enabled,
                &mut state,
            )
        })?;
        Ok(Autocast {
            state,
            _not_send: PhantomData,
        })
    }

    /// Whether autocast is on for `device`'s kind of device on this thread.
    pub fn is_enabled(device: Device) -> bool {
        // SAFETY: reads thread-local state.
        device_type(device).is_ok_and(|d| unsafe { ffi::convkit_autocast_is_enabled(d) })
    }

    /// The kind autocast casts to on `device`'s kind of device (bf16 by default on the CPU,
    /// fp16 on CUDA) on this thread.
    pub fn dtype(device: Device) -> Option<Kind> {
        let d = device_type(device).ok()?;
        // SAFETY: reads thread-local state.
        match unsafe { ffi::convkit_autocast_dtype(d) } {
            5 => Some(Kind::Half),
            6 => Some(Kind::Float),
            15 => Some(Kind::BFloat16),
            _ => None,
        }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: `state` came from `convkit_autocast_enter` and is released once.
        unsafe { ffi::convkit_autocast_exit(self.state) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn matmul_kind() -> Kind {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        a.matmul(&a).kind()
    }

    #[test]
    fn guards_nest_and_restore() {
        assert!(!Autocast::is_enabled(Device::Cpu));
        let before = Autocast::dtype(Device::Cpu);
        {
            let _outer = Autocast::new(Device::Cpu, Precision::Bf16).unwrap();
            assert!(Autocast::is_enabled(Device::Cpu));
            assert_eq!(Autocast::dtype(Device::Cpu), Some(Kind::BFloat16));
            assert_eq!(matmul_kind(), Kind::BFloat16);
            {
                let _inner = Autocast::new(Device::Cpu, Precision::Fp32).unwrap();
                assert!(!Autocast::is_enabled(Device::Cpu));
                assert_eq!(matmul_kind(), Kind::Float);
            }
            assert!(Autocast::is_enabled(Device::Cpu));
            assert_eq!(matmul_kind(), Kind::BFloat16);
        }
        assert!(!Autocast::is_enabled(Device::Cpu));
        assert_eq!(Autocast::dtype(Device::Cpu), before);
        assert_eq!(matmul_kind(), Kind::Float);
    }

    #[test]
    fn restores_when_the_guarded_code_fails() {
        fn fails() -> Result<()> {
            let _guard = Autocast::new(Device::Cpu, Precision::Bf16)?;
            let _ = Tensor::zeros([2], (Kind::Float, Device::Cpu)).f_view([3])?;
            Ok(())
        }
        assert!(fails().is_err());
        assert!(!Autocast::is_enabled(Device::Cpu));
        let panicked = std::panic::catch_unwind(|| {
            let _guard = Autocast::new(Device::Cpu, Precision::Bf16).unwrap();
            panic!("inside the guard");
        });
        assert!(panicked.is_err());
        assert!(!Autocast::is_enabled(Device::Cpu));
    }

    #[test]
    fn losses_and_reductions_stay_fp32() {
        let _guard = Autocast::new(Device::Cpu, Precision::Bf16).unwrap();
        let logits = Tensor::randn([4, 3], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let labels = Tensor::from_slice(&[0i64, 1, 2, 0]);
        let loss =
            logits.cross_entropy_loss::<Tensor>(&labels, None, tch::Reduction::Mean, -100, 0.0);
        assert_eq!(loss.kind(), Kind::Float);
    }
}
