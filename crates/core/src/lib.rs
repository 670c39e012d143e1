//! The vocabulary of Switchyard: workload, model and hardware specs (YAML),
//! arrival processes, the request schedule (CSV), latency records and
//! statistics. Every other crate speaks in these types.

pub mod arch;
pub mod arrival_stream;
pub mod arrivals;
pub mod closed_loop;
pub mod cost;
pub mod direct_host;
pub mod error;
pub mod hardware;
pub mod latency_sketch;
pub mod line_cap;
pub mod model;
pub mod names;
pub mod output;
pub mod output_set;
pub mod overrides;
pub mod prefetch;
pub mod records;
pub mod schedule;
pub mod stats;
pub mod summary;
pub mod timeline;
pub mod traces;
pub mod weighted_pick;
pub mod workload;
pub mod yaml;

pub use error::{Error, InputError, Result, EXIT_BAD_INPUT};
pub use hardware::HardwareProfile;
pub use model::ModelShape;
pub use schedule::{Request, Schedule};
pub use workload::Workload;
