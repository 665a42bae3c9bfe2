//! Weight initialisers, with Keras' defaults.

use tch::nn::Init;

/// Glorot (Xavier) uniform: `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`.
///
/// Keras' default for `Conv2D` and `Dense` kernels; for a convolution the fans include
/// the kernel's spatial size (`in * kh * kw` and `out * kh * kw`).
pub fn glorot_uniform(fan_in: i64, fan_out: i64) -> Init {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform {
        lo: -limit,
        up: limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_follows_the_fans() {
        match glorot_uniform(9, 288) {
            Init::Uniform { lo, up } => {
                assert!((up - (6.0f64 / 297.0).sqrt()).abs() < 1e-12);
                assert_eq!(lo, -up);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
