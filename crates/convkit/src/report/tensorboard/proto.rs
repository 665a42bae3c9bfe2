//! The part of TensorFlow's `event.proto` and `summary.proto` (as TensorBoard keeps them in
//! `tensorboard/compat/proto/`) that scalar and image summaries need. Field numbers are the
//! protos'; fields left out are skipped when read, as protobuf does with unknown fields.

/// One entry of an event file (`tensorboard.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The step the event belongs to (here: the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// The contents of an [`Event`] (the proto's `oneof what`, the two kinds written here).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The first event of a file: its format version, `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summary values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// A set of tagged values (`tensorboard.Summary`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// One tagged value (`tensorboard.Summary.Value`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    /// The series it belongs to, such as `epoch_loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The value itself.
    #[prost(oneof = "Kind", tags = "2, 4")]
    pub kind: Option<Kind>,
}

/// What a [`Value`] is (the proto's `oneof value`, the two kinds written here).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// A scalar (`simple_value`), which TensorBoard's scalar dashboard reads.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image.
    #[prost(message, tag = "4")]
    Image(Image),
}

/// An encoded image (`tensorboard.Summary.Image`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grayscale, 2 grayscale and alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The image file's bytes (PNG here).
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// The file version every event file starts with.
pub const FILE_VERSION: &str = "brain.Event:2";

impl Event {
    /// The summary values the event holds (none for a file-version event).
    pub fn values(&self) -> &[Value] {
        match &self.what {
            Some(What::Summary(summary)) => &summary.value,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The bytes protoc gives for these messages, field by field.
    #[test]
    fn encodes_with_the_protos_field_numbers() {
        let event = Event {
            wall_time: 1.5,
            step: 3,
            what: Some(What::FileVersion("v".into())),
        };
        let mut expected = vec![0x09]; // field 1, 64-bit
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 3]); // field 2, varint
        expected.extend_from_slice(&[0x1a, 1, b'v']); // field 3, length-delimited
        assert_eq!(event.encode_to_vec(), expected);

        let value = Value {
            tag: "t".into(),
            kind: Some(Kind::SimpleValue(0.5)),
        };
        let mut expected = vec![0x0a, 1, b't', 0x15]; // field 1 bytes; field 2, 32-bit
        expected.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(value.encode_to_vec(), expected);

        let image = Value {
            tag: String::new(),
            kind: Some(Kind::Image(Image {
                height: 2,
                width: 3,
                colorspace: 4,
                encoded_image_string: vec![7],
            })),
        };
        // field 4 (message) holding height=1, width=2, colorspace=3, bytes=4.
        let expected = vec![0x22, 9, 0x08, 2, 0x10, 3, 0x18, 4, 0x22, 1, 7];
        assert_eq!(image.encode_to_vec(), expected);

        let summary = Event {
            wall_time: 0.0,
            step: 0,
            what: Some(What::Summary(Summary { value: vec![value] })),
        };
        let bytes = summary.encode_to_vec();
        assert_eq!(bytes[0], 0x2a, "summary is field 5"); // zero wall time and step are omitted
        assert_eq!(Event::decode(&bytes[..]).unwrap(), summary);
    }
}
