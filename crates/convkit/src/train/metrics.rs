//! Running loss and accuracy, accumulated on the device so that a step never waits for it.

use tch::{Device, Kind, Tensor};

/// Sums of loss and correct predictions over the batches seen so far.
#[derive(Debug)]
pub struct RunningMetrics {
    loss_sum: Tensor,
    correct: Tensor,
    count: usize,
}

impl RunningMetrics {
    /// Empty sums on `device`.
    pub fn new(device: Device) -> Self {
        RunningMetrics {
            loss_sum: Tensor::zeros([], (Kind::Double, device)),
            correct: Tensor::zeros([], (Kind::Int64, device)),
            count: 0,
        }
    }

    /// Adds a batch of `size` samples with summed loss `loss_sum` and `correct` right
    /// answers (both 0-d tensors, detached from the graph).
    pub fn add(&mut self, loss_sum: &Tensor, correct: &Tensor, size: usize) {
        let _ = self
            .loss_sum
            .g_add_(&loss_sum.detach().to_kind(Kind::Double));
        let _ = self.correct.g_add_(correct);
        self.count += size;
    }

    /// Samples counted.
    pub fn count(&self) -> usize {
        self.count
    }

    /// `(mean loss, accuracy)`; `(NaN, NaN)` before any batch. Reading synchronises with the
    /// device.
    pub fn read(&self) -> (f64, f64) {
        if self.count == 0 {
            return (f64::NAN, f64::NAN);
        }
        let n = self.count as f64;
        (
            self.loss_sum.double_value(&[]) / n,
            self.correct.int64_value(&[]) as f64 / n,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_over_samples_not_batches() {
        let mut m = RunningMetrics::new(Device::Cpu);
        m.add(&Tensor::from(3.0f32), &Tensor::from(3i64), 3);
        m.add(&Tensor::from(1.0f32), &Tensor::from(0i64), 1);
        assert_eq!(m.read(), (1.0, 0.75));
        assert_eq!(m.count(), 4);
    }
}
