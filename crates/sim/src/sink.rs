//! Where per-request records go.

use switchyard_core::records::{RecordWriter, RequestRecord};
use switchyard_core::Error;

/// Receives one record per finished request, in finishing order.
pub trait RecordSink {
    /// Takes one record; an error stops the simulation.
    fn record(&mut self, r: &RequestRecord) -> Result<(), Error>;
}

impl RecordSink for RecordWriter {
    fn record(&mut self, r: &RequestRecord) -> Result<(), Error> {
        self.write(r)
    }
}

impl RecordSink for Vec<RequestRecord> {
    fn record(&mut self, r: &RequestRecord) -> Result<(), Error> {
        self.push(r.clone());
        Ok(())
    }
}

/// Discards records (benchmarks, `--compare-systems` when only summaries are wanted).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl RecordSink for NullSink {
    fn record(&mut self, _: &RequestRecord) -> Result<(), Error> {
        Ok(())
    }
}
