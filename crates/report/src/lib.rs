//! Figures and tables from latency records.
