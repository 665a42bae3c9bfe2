//! TensorBoard event files, as Keras' TensorBoard callback writes them: TFRecord framing
//! ([`record`]), the protobuf messages ([`proto`]), a writer of scalars and PNG images
//! ([`writer`]), a reader ([`reader`]) and the pruning that keeps a resumed run's files free
//! of duplicates ([`prune`]). [`TensorBoardLog`] writes them during training.

pub mod proto;
pub mod prune;
pub mod reader;
pub mod record;
pub mod training_log;
pub mod writer;

pub use proto::Event;
pub use prune::{discard_steps_after, remove_event_files};
pub use reader::{event_files, read_event_dir, read_events, scalars, Scalar};
pub use training_log::{LogSplit, TensorBoardLog};
pub use writer::EventWriter;
