//! How long the host spent in single issuing calls: what can hold the
//! dispatcher back. `replay` reports it in `summary.json` (`host_path`), so a
//! late dispatch can be traced to the call that caused it.

use serde::Serialize;

/// Counts and longest durations of the executor's issuing calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct IssueStats {
    /// Steps of compute issuing layer by layer (each a few layers' launches).
    pub layer_steps: u64,
    /// Longest single step, seconds.
    pub max_layer_step_s: f64,
    /// Mean step, seconds.
    pub mean_layer_step_s: f64,
    /// Steps that issued a warm pass through a cached graph (the
    /// embedding's launches, then one graph launch).
    pub graph_steps: u64,
    /// Longest such step, seconds.
    pub max_graph_step_s: f64,
    /// Mean such step, seconds.
    pub mean_graph_step_s: f64,
    /// Steps that captured a warm pass into a graph, then launched it.
    pub capture_steps: u64,
    /// Of these, captures that updated an old graph in place.
    pub captures_updated: u64,
    /// Longest capture step, seconds.
    pub max_capture_step_s: f64,
    /// Mean capture step, seconds.
    pub mean_capture_step_s: f64,
    /// Host-to-device copy calls (a pinned copy, or one pageable chunk).
    pub copy_calls: u64,
    /// Longest single copy call, seconds.
    pub max_copy_call_s: f64,
    /// Mean copy call, seconds.
    pub mean_copy_call_s: f64,
}

impl IssueStats {
    /// Host seconds spent issuing computes so far (layer steps, graph
    /// launches and captures).
    pub fn busy_s(&self) -> f64 {
        self.layer_steps as f64 * self.mean_layer_step_s
            + self.graph_steps as f64 * self.mean_graph_step_s
            + self.capture_steps as f64 * self.mean_capture_step_s
    }

    /// Notes one compute-issuing step of `s` seconds.
    pub fn layer(&mut self, s: f64) {
        self.layer_steps += 1;
        self.max_layer_step_s = self.max_layer_step_s.max(s);
        self.mean_layer_step_s += (s - self.mean_layer_step_s) / self.layer_steps as f64;
    }

    /// Notes one step that issued a whole warm pass through a cached graph.
    pub fn graph(&mut self, s: f64) {
        self.graph_steps += 1;
        self.max_graph_step_s = self.max_graph_step_s.max(s);
        self.mean_graph_step_s += (s - self.mean_graph_step_s) / self.graph_steps as f64;
    }

    /// Notes one step that captured a warm pass (`updated`: into an old
    /// graph, in place) and launched it.
    pub fn capture(&mut self, s: f64, updated: bool) {
        self.capture_steps += 1;
        self.captures_updated += updated as u64;
        self.max_capture_step_s = self.max_capture_step_s.max(s);
        self.mean_capture_step_s += (s - self.mean_capture_step_s) / self.capture_steps as f64;
    }

    /// Notes one copy call of `s` seconds.
    pub fn copy(&mut self, s: f64) {
        self.copy_calls += 1;
        self.max_copy_call_s = self.max_copy_call_s.max(s);
        self.mean_copy_call_s += (s - self.mean_copy_call_s) / self.copy_calls as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_count_max_and_mean() {
        let mut s = IssueStats::default();
        for x in [1.0, 3.0, 2.0] {
            s.layer(x);
        }
        s.copy(4.0);
        assert_eq!(s.layer_steps, 3);
        assert_eq!(s.max_layer_step_s, 3.0);
        assert!((s.mean_layer_step_s - 2.0).abs() < 1e-12);
        assert_eq!((s.copy_calls, s.max_copy_call_s), (1, 4.0));
    }
}
