//! Keras-style summary table of a model: layer, output shape, parameters.

use super::layer_spec::LayerSpec;
use super::residual::ResidualSpec;
use super::sequential::Sequential;
use crate::error::Result;

/// Formats `n` with thousands separators: `104202` -> `104,202`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

/// One row of a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// `name (Type)`.
    pub layer: String,
    /// Output shape with the batch axis shown as `None`.
    pub output_shape: String,
    /// Trainable values of the layer.
    pub params: i64,
}

/// A model summary: rows and totals, printable with `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The model's name.
    pub name: String,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
    /// Trainable values in all.
    pub trainable_params: i64,
    /// Values that are not trained (frozen layers, batch-norm statistics).
    pub non_trainable_params: i64,
}

impl Summary {
    /// Summarises a sequential model from its description alone (nothing is built). The
    /// layers of a residual block and of a pretrained network follow their block's row,
    /// indented.
    pub fn of(spec: &Sequential) -> Result<Summary> {
        let shapes = spec.output_shapes()?;
        let counts = spec.layer_param_counts()?;
        let inputs = std::iter::once(&spec.input_shape).chain(shapes.iter());
        let mut rows = Vec::new();
        for ((layer, input), (shape, params)) in spec
            .layers
            .iter()
            .zip(inputs)
            .zip(shapes.iter().zip(&counts))
        {
            rows.push(SummaryRow {
                layer: format!("{} ({})", layer.name, layer.spec.class_name()),
                output_shape: shape_text(shape),
                params: params.total(),
            });
            match &layer.spec {
                LayerSpec::Residual(block) => rows.extend(residual_rows(block, input)?),
                // a pretrained network lists its own layers, which freezing names
                LayerSpec::Backbone(backbone) => rows.extend(
                    backbone
                        .layer_param_counts()
                        .into_iter()
                        .map(|(name, params)| SummaryRow {
                            layer: format!(
                                "  {name}{}",
                                if backbone.trainable_layers.contains(&name) {
                                    ""
                                } else {
                                    " (frozen)"
                                }
                            ),
                            output_shape: String::new(),
                            params,
                        }),
                ),
                _ => {}
            }
        }
        Ok(Summary {
            name: spec.name.clone(),
            rows,
            trainable_params: counts.iter().map(|c| c.trainable).sum(),
            non_trainable_params: counts.iter().map(|c| c.non_trainable).sum(),
        })
    }

    /// Trainable and non-trainable values together.
    pub fn total_params(&self) -> i64 {
        self.trainable_params + self.non_trainable_params
    }
}

/// Indented rows for the layers of a residual block taking `input`, then its projection.
fn residual_rows(block: &ResidualSpec, input: &[i64]) -> Result<Vec<SummaryRow>> {
    let mut rows = Vec::new();
    let mut shape = input.to_vec();
    for layer in &block.layers {
        let params = layer.spec.param_counts(&shape)?.total();
        shape = layer.spec.output_shape(&shape)?;
        rows.push(SummaryRow {
            layer: format!("  {} ({})", layer.name, layer.spec.class_name()),
            output_shape: shape_text(&shape),
            params,
        });
    }
    let projection = block.projection_param_count(input, &shape)?;
    if projection > 0 {
        rows.push(SummaryRow {
            layer: "  projection (Conv2D)".into(),
            output_shape: shape_text(&shape),
            params: projection,
        });
    }
    Ok(rows)
}

/// `(None, 32, 26, 26)`: a per-sample shape with the batch axis in front.
pub fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("(None, {})", dims.join(", "))
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.layer.len())
            .max()
            .unwrap_or(0)
            .max(28);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.output_shape.len())
            .max()
            .unwrap_or(0)
            .max(22);
        let w2 = 13;
        let line = |l: &str, m: &str, r: &str, fill: &str| {
            format!(
                "{l}{}{m}{}{m}{}{r}",
                fill.repeat(w0 + 2),
                fill.repeat(w1 + 2),
                fill.repeat(w2 + 2)
            )
        };
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{}", line("┏", "┳", "┓", "━"))?;
        writeln!(
            f,
            "┃ {:<w0$} ┃ {:<w1$} ┃ {:>w2$} ┃",
            "Layer (type)", "Output Shape", "Param #"
        )?;
        writeln!(f, "{}", line("┡", "╇", "┩", "━"))?;
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                writeln!(f, "{}", line("├", "┼", "┤", "─"))?;
            }
            writeln!(
                f,
                "│ {:<w0$} │ {:<w1$} │ {:>w2$} │",
                row.layer,
                row.output_shape,
                thousands(row.params)
            )?;
        }
        writeln!(f, "{}", line("└", "┴", "┘", "─"))?;
        let size = |n: i64| human_bytes(n as f64 * 4.0);
        writeln!(
            f,
            " Total params: {} ({})",
            thousands(self.total_params()),
            size(self.total_params())
        )?;
        writeln!(
            f,
            " Trainable params: {} ({})",
            thousands(self.trainable_params),
            size(self.trainable_params)
        )?;
        writeln!(
            f,
            " Non-trainable params: {} ({})",
            thousands(self.non_trainable_params),
            size(self.non_trainable_params)
        )?;
        write!(
            f,
            " Shapes are channels first: (batch, channels, height, width)."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(104_202), "104,202");
        assert_eq!(thousands(14_714_688), "14,714,688");
    }

    #[test]
    fn table_lists_every_layer_and_the_total() {
        let spec = Sequential::new("tiny", [1, 8, 8])
            .conv2d(4, 3, Activation::Relu)
            .flatten()
            .dense(2, Activation::Softmax);
        let text = Summary::of(&spec).unwrap().to_string();
        assert!(text.contains("conv2d (Conv2D)"), "{text}");
        assert!(text.contains("(None, 4, 6, 6)"), "{text}");
        assert!(text.contains("dense (Dense)"), "{text}");
        assert!(text.contains("Total params: 330 (1.29 KB)"), "{text}");
    }
}
