//! Warm passes as graphs: a compute with nothing left to wait for, on one
//! GPU, is issued as its embedding layer's few launches (they carry the
//! request ids by value) and one graph launch for all later layers, instead
//! of a layer per step.
//!
//! A graph holds absolute addresses, so it is cached per *placement*: the
//! architecture, layer range, batch size, GPU, workspace and the arena
//! address of every layer (and side part) it reads. A model loaded at
//! another pool offset is another placement; two models of one architecture
//! at the same offsets share a graph (their graphs would be identical).
//! A placement is captured once [`CAPTURE_AFTER`] warm passes have been
//! issued there layer by layer (so a model loaded for one batch never pays
//! a capture). Each shape keeps at most [`PLACEMENTS_PER_SHAPE`] graphs:
//! beyond that the least recently used one is re-captured for the new
//! placement and its executable updated in place when the device can
//! (`cuGraphExecUpdate`: same topology, new addresses).
//!
//! Cold and pipelined passes (copies still to wait for), tensor-parallel
//! groups and devices without graphs take the layer-by-layer path.

use super::{Kind, Pass, Run};
use crate::device::{DevPtr, Device, Graph, StreamKind};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use switchyard_core::model::LayerKind;

/// Warm passes issued layer by layer at a placement before it is captured.
pub const CAPTURE_AFTER: u32 = 1;
/// Graphs kept per shape (architecture, layers, batch, GPU, workspace).
pub const PLACEMENTS_PER_SHAPE: usize = 4;
/// Graphs kept in all.
pub const MAX_GRAPHS: usize = 256;

/// What is issued, apart from the weights' addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    arch: String,
    seq: u64,
    layers: Range<usize>,
    batch: usize,
    gpu: usize,
    ws: DevPtr,
    /// Sizes of GEMM-equivalent layers depend on these.
    rate: (u64, u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Placement {
    shape: Shape,
    addrs: Vec<(Option<DevPtr>, Option<DevPtr>)>,
}

/// How a step issued its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// Layer by layer ([`Pass::step`]).
    Layers,
    /// The embedding's launches and a cached graph.
    Graph,
    /// As `Graph`, captured first (updating an old executable in place
    /// when `true`).
    Captured(bool),
}

/// Counts of the cache's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GraphStats {
    /// Graph launches (each a whole warm pass but its embedding).
    pub launches: u64,
    /// Captures (each followed by a launch).
    pub captures: u64,
    /// Captures whose executable was updated in place, not instantiated.
    pub updates: u64,
}

/// The graphs of warm passes; lives no longer than the device's arena.
#[derive(Debug, Default)]
pub struct Graphs {
    /// Never capture or launch graphs: every pass layer by layer (replay's
    /// and calibration's `--graphs off`).
    pub off: bool,
    cache: HashMap<Placement, (Graph, u64)>,
    warm: HashMap<Placement, u32>,
    tick: u64,
    /// What the cache did so far.
    pub stats: GraphStats,
}

impl Graphs {
    /// A cache that captures warm passes when `on`, else never.
    pub fn new(on: bool) -> Graphs {
        Graphs {
            off: !on,
            ..Graphs::default()
        }
    }

    /// Issues up to `max_layers` more layers of `pass`, or, when it has not
    /// started and nothing is left to wait for, the whole pass through a
    /// graph (its [`Pass::finish`] still follows).
    pub fn step(
        &mut self,
        dev: &mut dyn Device,
        pass: &mut Pass,
        r: &Run,
        max_layers: usize,
    ) -> Result<Issued> {
        let eager = !self.off
            && pass.start.is_none()
            && pass.next == r.layers.start
            && !r.layers.is_empty()
            && r.gpus.len() == 1
            && r.waits.is_empty()
            && dev.graphs_supported()
            && r.layers.clone().all(|l| (r.addr)(0, l).is_some());
        if !eager {
            pass.step(dev, r, max_layers)?;
            return Ok(Issued::Layers);
        }
        // The embedding stays outside the graph (request ids by value).
        let embeds = matches!(r.layout.kind, Kind::Transformer(_))
            && r.layout.shape.layers[r.layers.start].kind == LayerKind::Embedding;
        let from = r.layers.start + embeds as usize;
        if from == r.layers.end {
            pass.step(dev, r, max_layers)?;
            return Ok(Issued::Layers);
        }
        let key = placement(r, from..r.layers.end);
        self.tick += 1;
        let gpu = r.gpus[0];
        if let Some((g, used)) = self.cache.get_mut(&key) {
            *used = self.tick;
            let g = *g;
            eager_part(dev, pass, r, from)?;
            dev.launch_graph(g)?;
            pass.next = r.layers.end;
            self.stats.launches += 1;
            return Ok(Issued::Graph);
        }
        let seen = self.warm.entry(key.clone()).or_insert(0);
        if *seen < CAPTURE_AFTER {
            *seen += 1;
            pass.step(dev, r, max_layers)?;
            return Ok(Issued::Layers);
        }
        self.warm.remove(&key);
        let reuse = self.make_room(&key.shape);
        eager_part(dev, pass, r, from)?;
        dev.begin_capture(gpu)?;
        let issued = pass.step(dev, r, usize::MAX);
        let graph = dev.end_capture(gpu, reuse, issued.is_ok());
        issued?;
        let Some(graph) = graph? else {
            anyhow::bail!("GPU {gpu}: the capture of a pass came back empty");
        };
        let updated = reuse == Some(graph);
        self.cache.insert(key, (graph, self.tick));
        dev.launch_graph(graph)?;
        self.stats.launches += 1;
        self.stats.captures += 1;
        self.stats.updates += updated as u64;
        Ok(Issued::Captured(updated))
    }

    /// Makes room for a graph of `shape`: when the shape has its fill of
    /// placements, takes its least recently used graph out of the cache
    /// (to be updated in place); drops the oldest graph overall when the
    /// cache is full.
    fn make_room(&mut self, shape: &Shape) -> Option<Graph> {
        let lru = |it: &mut dyn Iterator<Item = (&Placement, &(Graph, u64))>| {
            it.min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        };
        let same = self.cache.iter().filter(|(k, _)| k.shape == *shape).count();
        if same >= PLACEMENTS_PER_SHAPE {
            let k = lru(&mut self.cache.iter().filter(|(k, _)| k.shape == *shape))?;
            return self.cache.remove(&k).map(|(g, _)| g);
        }
        if self.cache.len() >= MAX_GRAPHS {
            let k = lru(&mut self.cache.iter())?;
            return self.cache.remove(&k).map(|(g, _)| g);
        }
        None
    }

    /// Drops every graph (before the arena they point into goes away).
    pub fn clear(&mut self, dev: &mut dyn Device) {
        for (_, (g, _)) in self.cache.drain() {
            dev.drop_graph(g);
        }
        self.warm.clear();
    }
}

/// Issues the layers before `from` (the embedding) and records the start
/// event, which a capture must not hold.
fn eager_part(dev: &mut dyn Device, pass: &mut Pass, r: &Run, from: usize) -> Result<()> {
    pass.step(dev, r, from - r.layers.start)?;
    if pass.start.is_none() {
        pass.start = Some(dev.record(r.gpus[0], StreamKind::Compute)?);
    }
    Ok(())
}

fn placement(r: &Run, layers: Range<usize>) -> Placement {
    Placement {
        shape: Shape {
            arch: r.layout.shape.arch.clone(),
            seq: r.layout.shape.items_per_request,
            layers: layers.clone(),
            batch: r.requests.len(),
            gpu: r.gpus[0],
            ws: r.ws,
            rate: (r.gemm_rate.to_bits(), r.synthetic_slope.to_bits()),
        },
        addrs: layers.map(|l| ((r.addr)(0, l), (r.side)(0, l))).collect(),
    }
}
