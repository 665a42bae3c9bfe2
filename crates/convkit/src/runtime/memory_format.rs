//! How a 4-D tensor's values are laid out in memory: NCHW (contiguous) or NHWC strides
//! (channels_last).

use std::ptr;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::ffi;
use crate::error::Result;

/// The memory layout of images, feature maps and convolution kernels. The logical shape
/// stays `(batch, channels, height, width)` either way; only the strides differ, so results
/// and checkpoints are the same.
///
/// oneDNN and cuDNN run convolutions fastest in `ChannelsLast` (the channels of one pixel
/// side by side), and bf16 gains from it most; a convolution whose input or kernel is
/// channels_last computes in channels_last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFormat {
    /// NCHW: each channel a plane (PyTorch's default).
    Contiguous,
    /// NHWC strides: each pixel's channels side by side (PyTorch's `torch.channels_last`).
    #[default]
    ChannelsLast,
}

impl MemoryFormat {
    /// The format convkit uses on `device` unless told otherwise: channels_last, measured
    /// faster for every workload in BENCHMARKS.md, in fp32 and bf16.
    pub fn default_for(_device: Device) -> MemoryFormat {
        MemoryFormat::ChannelsLast
    }

    fn code(self) -> i32 {
        match self {
            MemoryFormat::Contiguous => 0,
            MemoryFormat::ChannelsLast => 1,
        }
    }

    /// `contiguous` or `channels_last`.
    pub fn name(self) -> &'static str {
        match self {
            MemoryFormat::Contiguous => "contiguous",
            MemoryFormat::ChannelsLast => "channels_last",
        }
    }
}

/// `tensor` laid out in `format`, with `format`'s strides (itself when it already is; a
/// copy otherwise). A tensor dense in both layouts, such as a one-channel batch, gets
/// `format`'s strides too: libtorch chooses a convolution's layout from them. Tensors that
/// are not 4-D are returned as they are: the format only concerns image batches and kernels.
pub fn contiguous_in(tensor: &Tensor, format: MemoryFormat) -> Result<Tensor> {
    if tensor.dim() != 4 {
        return Ok(tensor.shallow_clone());
    }
    let mut out = ptr::null_mut();
    // SAFETY: `tensor` is live; on success `out` holds a new tensor we now own.
    ffi::check(unsafe { ffi::convkit_contiguous_in(tensor.as_ptr(), format.code(), &mut out) })?;
    Ok(unsafe { ffi::take_tensor(out) })
}

/// Whether `tensor` is dense in `format`'s order.
pub fn is_contiguous_in(tensor: &Tensor, format: MemoryFormat) -> bool {
    if tensor.dim() != 4 && format == MemoryFormat::ChannelsLast {
        return false;
    }
    // SAFETY: `tensor` is live.
    unsafe { ffi::convkit_is_contiguous_in(tensor.as_ptr(), format.code()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn changes_strides_not_values() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        assert!(is_contiguous_in(&x, MemoryFormat::Contiguous));
        let y = contiguous_in(&x, MemoryFormat::ChannelsLast).unwrap();
        assert_eq!(y.stride(), [60, 1, 15, 3]);
        assert!(is_contiguous_in(&y, MemoryFormat::ChannelsLast));
        assert!(!is_contiguous_in(&y, MemoryFormat::Contiguous));
        assert!(y.equal(&x));
        let back = contiguous_in(&y, MemoryFormat::Contiguous).unwrap();
        assert_eq!(back.stride(), x.stride());
        // a one-channel batch is dense both ways; it still gets channels_last strides
        let gray = Tensor::randn([2, 1, 4, 5], (Kind::Float, Device::Cpu));
        let restrided = contiguous_in(&gray, MemoryFormat::ChannelsLast).unwrap();
        assert_eq!(restrided.stride(), [20, 1, 5, 1]);
        assert!(restrided.equal(&gray));
        // other ranks pass through
        let v = Tensor::ones([3, 4], (Kind::Float, Device::Cpu));
        assert_eq!(
            contiguous_in(&v, MemoryFormat::ChannelsLast)
                .unwrap()
                .stride(),
            [4, 1]
        );
    }

    #[test]
    fn channels_last_convolution_equals_nchw() {
        let x = Tensor::randn([2, 3, 9, 9], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([8, 3, 3, 3], (Kind::Float, Device::Cpu));
        let nchw = x.conv2d(&w, None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let (xl, wl) = (
            contiguous_in(&x, MemoryFormat::ChannelsLast).unwrap(),
            contiguous_in(&w, MemoryFormat::ChannelsLast).unwrap(),
        );
        let nhwc = xl.conv2d(&wl, None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert!(is_contiguous_in(&nhwc, MemoryFormat::ChannelsLast));
        assert!(nhwc.allclose(&nchw, 1e-5, 1e-5, false));
    }
}
