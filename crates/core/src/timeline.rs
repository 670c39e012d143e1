//! `timeline.json`: what each GPU's compute stream and copy link did, in the
//! Chrome trace-event format (open it in <https://ui.perfetto.dev>).

use crate::output::write_atomic_with;
use crate::Error;
use std::io::Write;
use std::path::Path;

/// Which stream of a GPU a span ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The compute stream.
    Compute,
    /// The copy stream (the GPU's host link).
    Copy,
    /// Kernels reading weights in place from pinned host memory over the
    /// GPU's host link (`policy.direct_host`): drawn on the link's track.
    HostRead,
    /// The peer link from GPU `from` into this GPU (multi-path loading's
    /// forwarded pieces).
    Peer {
        /// The GPU the bytes come from.
        from: u32,
    },
    /// The link's device-to-host direction: evicted weights copied back
    /// to host memory (`policy.offload`).
    Offload,
}

/// Trace thread of a GPU's device-to-host (offload) lane; named only where
/// spans use it.
pub const OFFLOAD_TID: u32 = 1 << 20;

/// One interval of work on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The GPU.
    pub gpu: u32,
    /// Its stream.
    pub track: Track,
    /// Model index.
    pub model: u32,
    /// Pipeline stage.
    pub stage: u32,
    /// Layers (absolute indices).
    pub layers: (u32, u32),
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Compute: requests in the batch; copy: 0.
    pub batch_size: u32,
    /// Copy: bytes moved; compute: 0.
    pub bytes: u64,
    /// Streamed (uncached) weights.
    pub streamed: bool,
    /// Compute measured by `replay`: host seconds spent issuing it (`None`
    /// in `sim`, which has no such figure); written as `host_ms`.
    pub host_s: Option<f64>,
}

/// Spans recorded during a run, capped in number (`sim` predicts them,
/// `replay` measures them; both write the same file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Number of GPUs (one trace process each).
    pub gpus: u32,
    /// Model names, indexed by `Span::model`.
    pub models: Vec<String>,
    /// Spans in issue order.
    pub spans: Vec<Span>,
    /// Spans left out once the cap was reached.
    pub dropped: u64,
}

impl Timeline {
    /// Adds a span, or counts it as dropped once `cap` spans are held.
    pub fn push(&mut self, cap: usize, span: Span) {
        if self.spans.len() < cap {
            self.spans.push(span);
        } else {
            self.dropped += 1;
        }
    }
}

/// Writes `timeline` to `path` (atomically) as Chrome trace-event JSON:
/// process `g` is GPU `g`, thread 0 its compute stream, thread 1 its link
/// (copies, and direct host reads),
/// thread `2 + h` the peer link from GPU `h` into it and thread
/// [`OFFLOAD_TID`] its device-to-host offloads (each named only where
/// spans use it). Only GPUs with a span kept are named, so the file grows
/// with the spans kept, not with the cluster (a million idle GPUs write
/// nothing).
pub fn write_timeline(path: &Path, timeline: &Timeline) -> Result<(), Error> {
    write_atomic_with(path, |w| write_trace(w, timeline))
}

fn write_trace(w: &mut dyn Write, t: &Timeline) -> std::io::Result<()> {
    writeln!(
        w,
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"dropped_spans\":{}}},\"traceEvents\":[",
        t.dropped
    )?;
    let mut first = true;
    let mut sep = |w: &mut dyn Write| -> std::io::Result<()> {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        Ok(())
    };
    let mut used = vec![false; t.gpus as usize];
    for s in &t.spans {
        if let Some(u) = used.get_mut(s.gpu as usize) {
            *u = true;
        }
    }
    for g in (0..t.gpus).filter(|&g| used[g as usize]) {
        sep(w)?;
        write!(w, "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{g},\"args\":{{\"name\":\"GPU {g}\"}}}}")?;
        sep(w)?;
        write!(w, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{g},\"tid\":0,\"args\":{{\"name\":\"compute\"}}}}")?;
        sep(w)?;
        write!(w, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{g},\"tid\":1,\"args\":{{\"name\":\"host link (copies)\"}}}}")?;
    }
    let mut peers: Vec<(u32, u32)> = t
        .spans
        .iter()
        .filter_map(|s| match s.track {
            Track::Peer { from } => Some((s.gpu, from)),
            _ => None,
        })
        .collect();
    peers.sort_unstable();
    peers.dedup();
    for (g, from) in peers {
        sep(w)?;
        write!(w, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{g},\"tid\":{},\"args\":{{\"name\":\"peer link from GPU {from}\"}}}}", 2 + from)?;
    }
    let mut offloading: Vec<u32> = t
        .spans
        .iter()
        .filter(|s| s.track == Track::Offload)
        .map(|s| s.gpu)
        .collect();
    offloading.sort_unstable();
    offloading.dedup();
    for g in offloading {
        sep(w)?;
        write!(w, "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{g},\"tid\":{OFFLOAD_TID},\"args\":{{\"name\":\"host link, device to host (offloads)\"}}}}")?;
    }
    for s in &t.spans {
        sep(w)?;
        let model = t
            .models
            .get(s.model as usize)
            .map(String::as_str)
            .unwrap_or("?");
        let model = json_escape(model);
        let (ts, dur) = (s.start_s * 1e6, (s.end_s - s.start_s) * 1e6);
        match s.track {
            Track::Compute => write!(
                w,
                "{{\"name\":\"{model} s{} x{}\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":{},\"tid\":0,\"ts\":{ts:.3},\"dur\":{dur:.3},\"args\":{{\"layers\":\"{}..{}\",\"batch\":{},\"streamed\":{}{}}}}}",
                s.stage,
                s.batch_size,
                s.gpu,
                s.layers.0,
                s.layers.1,
                s.batch_size,
                s.streamed,
                s.host_s
                    .map_or(String::new(), |h| format!(",\"host_ms\":{:.3}", h * 1e3))
            )?,
            Track::Copy => write!(
                w,
                "{{\"name\":\"load {model} s{} L{}..{}\",\"cat\":\"copy\",\"ph\":\"X\",\"pid\":{},\"tid\":1,\"ts\":{ts:.3},\"dur\":{dur:.3},\"args\":{{\"bytes\":{},\"streamed\":{}}}}}",
                s.stage, s.layers.0, s.layers.1, s.gpu, s.bytes, s.streamed
            )?,
            Track::HostRead => write!(
                w,
                "{{\"name\":\"host read {model} s{} L{}..{}\",\"cat\":\"direct_host\",\"ph\":\"X\",\"pid\":{},\"tid\":1,\"ts\":{ts:.3},\"dur\":{dur:.3},\"args\":{{\"bytes\":{},\"batch\":{}}}}}",
                s.stage, s.layers.0, s.layers.1, s.gpu, s.bytes, s.batch_size
            )?,
            Track::Peer { from } => write!(
                w,
                "{{\"name\":\"forward {model} s{} L{}..{}\",\"cat\":\"peer\",\"ph\":\"X\",\"pid\":{},\"tid\":{},\"ts\":{ts:.3},\"dur\":{dur:.3},\"args\":{{\"bytes\":{},\"from\":{from}}}}}",
                s.stage, s.layers.0, s.layers.1, s.gpu, 2 + from, s.bytes
            )?,
            Track::Offload => write!(
                w,
                "{{\"name\":\"offload {model} s{} L{}..{}\",\"cat\":\"offload\",\"ph\":\"X\",\"pid\":{},\"tid\":{OFFLOAD_TID},\"ts\":{ts:.3},\"dur\":{dur:.3},\"args\":{{\"bytes\":{}}}}}",
                s.stage, s.layers.0, s.layers.1, s.gpu, s.bytes
            )?,
        }
    }
    writeln!(w, "\n]}}")
}

fn json_escape(s: &str) -> String {
    serde_json::to_string(s)
        .map(|q| q[1..q.len() - 1].to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compute(host_s: Option<f64>) -> Span {
        Span {
            gpu: 0,
            track: Track::Compute,
            model: 0,
            stage: 0,
            layers: (0, 4),
            start_s: 0.001,
            end_s: 0.003,
            batch_size: 2,
            bytes: 0,
            streamed: false,
            host_s,
        }
    }

    #[test]
    fn a_measured_compute_carries_its_host_issue_time() {
        let mut t = Timeline {
            gpus: 1,
            models: vec!["m".into()],
            ..Timeline::default()
        };
        t.push(10, compute(None));
        t.push(10, compute(Some(0.0015)));
        let mut out = Vec::new();
        write_trace(&mut out, &t).unwrap();
        let text = String::from_utf8(out).unwrap();
        let events: serde_json::Value = serde_json::from_str(&text).unwrap();
        let spans: Vec<_> = events["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "compute")
            .collect();
        assert_eq!(spans.len(), 2);
        assert!(spans[0]["args"].get("host_ms").is_none(), "{text}");
        assert_eq!(spans[1]["args"]["host_ms"], 1.5, "{text}");
        assert_eq!(spans[1]["dur"], 2000.0, "{text}");
    }

    #[test]
    fn offloads_get_a_named_track_of_their_own() {
        let mut t = Timeline {
            gpus: 2,
            models: vec!["m".into()],
            ..Timeline::default()
        };
        t.push(10, compute(None));
        let offload = Span {
            gpu: 1,
            track: Track::Offload,
            bytes: 1000,
            ..compute(None)
        };
        t.push(10, offload);
        let mut out = Vec::new();
        write_trace(&mut out, &t).unwrap();
        let events: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let events = events["traceEvents"].as_array().unwrap();
        let tid = OFFLOAD_TID as u64;
        let spans: Vec<_> = events.iter().filter(|e| e["cat"] == "offload").collect();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0]["pid"].as_u64(), spans[0]["tid"].as_u64()),
            (Some(1), Some(tid))
        );
        assert_eq!(spans[0]["args"]["bytes"], 1000);
        assert_eq!(spans[0]["name"], "offload m s0 L0..4");
        // Named on GPU 1 only, where an offload ran.
        let named: Vec<_> = events
            .iter()
            .filter(|e| e["name"] == "thread_name" && e["tid"].as_u64() == Some(tid))
            .map(|e| e["pid"].as_u64())
            .collect();
        assert_eq!(named, vec![Some(1)]);
    }
}
