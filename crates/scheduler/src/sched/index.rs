//! Per-GPU indexes that keep dispatch and eviction O(log n) in the number
//! of models on a GPU: the models with requests waiting, ordered by their
//! head request's arrival, and the stages that may be evicted, ordered by
//! the eviction policy. The ready set, and under LFU and Belady the
//! eviction set, are lazy-deletion heaps ([`LazyHeap`]): an entry leaves
//! when its owner stops vouching for it (the model's head request is
//! another; the stage's generation in [`Generations`] moved on), and is
//! dropped then if it is on top, else when it reaches the top. Under LRU
//! the eviction set is a sorted linked list
//! ([`super::linked::LinkedSet`]) whose entries leave at once, and no
//! generations are kept. Their valid entries are kept equal to
//! what a scan of every model would find (`check_index` compares them), so
//! the choices, and the outputs, are those of the scans they replace.

use super::lazy::LazyHeap;
use super::linked::EvictionOrder;
use super::{Scheduler, VictimKey};
use smallvec::SmallVec;
use std::collections::BTreeSet;
use switchyard_core::workload::Eviction;

/// One GPU's indexes.
#[derive(Debug)]
pub(super) struct GpuIndex {
    /// `(head request's arrival sequence number, model)` of every model whose
    /// first stage uses this GPU and that has requests queued (valid while
    /// that request is still the model's head).
    pub(super) ready: LazyHeap<(u64, u32)>,
    /// `(victim key, model, stage, generation)` of every stage on this GPU
    /// that may be evicted now (resident, no copy in flight, no compute
    /// outstanding; in a heap, valid while the stage's generation is that
    /// one); the first not excluded is the victim (ties to the lower model,
    /// then stage, as the scan in model order did).
    pub(super) evictable: EvictionOrder<Evictable>,
}

impl GpuIndex {
    /// Empty indexes for a scheduler evicting by `eviction`.
    pub(super) fn new(eviction: Eviction) -> GpuIndex {
        GpuIndex {
            ready: LazyHeap::default(),
            evictable: EvictionOrder::new(sorted_eviction(eviction)),
        }
    }
}

/// An eviction set's entry: `(victim key, model, stage, generation)`,
/// ordered by key, then model, then stage.
type Evictable = (VictimKey, u32, u32, u32);

/// Whether eviction sets under `eviction` are sorted linked lists (keys
/// that grow: LRU's last use) rather than lazy heaps.
fn sorted_eviction(eviction: Eviction) -> bool {
    eviction == Eviction::Lru
}

/// The generations that tell the lazy eviction heaps' live entries from
/// stale ones: per stage of every model, bumped whenever its victim key
/// changes (at most twice per push of an entry: an entry lives through
/// fewer than 2^30 pushes of its heap ([`LazyHeap`] compacts), so no stale
/// entry meets its generation again). None are kept when the eviction sets
/// are sorted lists, whose entries are all live.
#[derive(Debug, Default)]
pub(super) struct Generations {
    /// Per model: index of its first stage in `gen`.
    stage_base: Vec<u32>,
    /// Per stage of every model, in (model, stage) order.
    gen: Vec<u32>,
}

impl Generations {
    /// Generations for models placed as `placements`, evicted by `eviction`.
    pub(super) fn new(placements: &[crate::placement::Placement], eviction: Eviction) -> Self {
        if sorted_eviction(eviction) {
            return Generations::default();
        }
        let mut stage_base = Vec::with_capacity(placements.len());
        let mut stages = 0;
        for p in placements {
            stage_base.push(stages);
            stages += p.pp;
        }
        Generations {
            stage_base,
            gen: vec![0; stages as usize],
        }
    }

    /// Moves stage `s` of `m`'s generation on; its old and new generations
    /// (both 0 without generations).
    fn bump(&mut self, m: u32, s: u32) -> (u32, u32) {
        if self.gen.is_empty() {
            return (0, 0);
        }
        let gen = &mut self.gen[(self.stage_base[m as usize] + s) as usize];
        let was = *gen;
        *gen = gen.wrapping_add(1);
        (was, *gen)
    }

    /// Whether the eviction entry `e` is live.
    fn live(&self, &(_, m, s, gen): &Evictable) -> bool {
        self.gen.is_empty() || self.gen[(self.stage_base[m as usize] + s) as usize] == gen
    }
}

impl Scheduler {
    /// Model `m`'s head request (arrival sequence `seq`) enters the ready
    /// sets of its first stage's GPUs.
    pub(super) fn mark_ready(&mut self, m: u32, seq: u64) {
        for r in 0..self.tp_of(m, 0) {
            let g = self.gpu_of(m, 0, r);
            let ready = &mut self.gpus[g as usize].ready;
            ready.push((seq, m));
            if ready.needs_compact() {
                let models = &self.models;
                ready.compact(|e| is_head(models, e));
            }
        }
    }

    /// Model `m`'s head request (arrival sequence `seq`) leaves the ready sets.
    pub(super) fn unmark_ready(&mut self, m: u32, seq: u64) {
        for r in 0..self.tp_of(m, 0) {
            let g = self.gpu_of(m, 0, r);
            self.gpus[g as usize].ready.forget(&(seq, m));
        }
    }

    /// The model to batch on GPU `g`: the one whose head request arrived
    /// first among those whose first-stage GPUs are all idle.
    pub(super) fn ready_model(&mut self, g: u32) -> Option<u32> {
        let (models, placements, busy) = (&self.models, &self.placements, &self.busy);
        self.gpus[g as usize]
            .ready
            .first(
                |e| is_head(models, e),
                |&(_, m)| {
                    let mi = m as usize;
                    super::hot::stage_gpus(&models[mi], &placements[mi], 0)
                        .iter()
                        .all(|&h| busy[h as usize] == 0)
                },
            )
            .map(|(_, m)| m)
    }

    /// The victim key of stage `s` of `m` now, `None` if it may not be evicted:
    /// (needed by a formed batch, policy key, tie-break); smallest goes first.
    fn victim_key(&self, m: u32, s: u32) -> Option<VictimKey> {
        let ms = &self.models[m as usize];
        let st = &ms.stages[s as usize];
        if !st.resident || !st.loading.is_empty() || st.in_use > 0 {
            return None;
        }
        // The tier in the first word's top bit: the counts beside it
        // (dispatches, requests served) stay far below 2^63.
        let tier = ((st.pending > 0) as u64) << 63;
        debug_assert!(ms.last_use < 1 << 63 && ms.served < 1 << 63);
        Some(match self.eviction {
            Eviction::Lru => (tier | ms.last_use, 0),
            Eviction::Lfu => (tier | ms.served, ms.last_use),
            Eviction::Belady => (tier, u64::MAX - self.next_use(m)),
        })
    }

    /// Belady: schedule position of the next request `m` will serve.
    fn next_use(&self, m: u32) -> u64 {
        let ms = &self.models[m as usize];
        if let Some(seq) = ms.queue.front_seq() {
            return seq;
        }
        self.future[m as usize]
            .get(ms.arrived as usize)
            .map_or(u64::MAX, |&p| p as u64)
    }

    /// Brings stage `s` of `m` up to date in the eviction sets of its GPUs;
    /// called after anything its victim key reads has changed. Systems that
    /// never evict (`resident`) keep no eviction sets.
    pub(super) fn reindex_stage(&mut self, m: u32, s: u32) {
        if self.traits.preloads {
            return;
        }
        let new = self.victim_key(m, s);
        let old = self.models[m as usize].stages[s as usize].indexed();
        if old == new {
            return;
        }
        let gpus: SmallVec<[u32; 4]> = SmallVec::from_slice(self.gpus_of(m, s));
        let st = &mut self.models[m as usize].stages[s as usize];
        st.set_indexed(new);
        let (was, gen) = self.generations.bump(m, s);
        // Ranks 1 and up keep their slots in `wide_slots` (see there).
        let wide = match gpus.len() {
            1 => 0,
            tp => self.wide_base[m as usize] as usize + s as usize * (tp - 1),
        };
        for (r, &g) in gpus.iter().enumerate() {
            let set = &mut self.gpus[g as usize].evictable;
            let slot = match r {
                0 => &mut st.slot,
                _ => &mut self.wide_slots[wide + r - 1],
            };
            if let Some(k) = old {
                set.remove(&(k, m, s, was), *slot);
            }
            if let Some(k) = new {
                let gens = &self.generations;
                *slot = set.insert((k, m, s, gen), |e| gens.live(e));
            }
        }
        for &g in &gpus {
            self.touch(g);
        }
    }

    /// [`Scheduler::reindex_stage`] for every stage of `m`.
    pub(super) fn reindex_model(&mut self, m: u32) {
        for s in 0..self.pp_of(m) {
            self.reindex_stage(m, s);
        }
    }

    /// The stage on GPU `g` to evict (not of model `exclude`), by policy;
    /// stages a formed batch still needs only if `allow_pending`.
    pub(super) fn victim(
        &mut self,
        g: u32,
        exclude: u32,
        allow_pending: bool,
    ) -> Option<(u32, u32)> {
        if self.traits.preloads {
            return None;
        }
        let gens = &self.generations;
        let (key, m, s, _) = self.gpus[g as usize]
            .evictable
            .first(|e| gens.live(e), |&(_, m, _, _)| m != exclude)?;
        (key.0 >> 63 == 0 || allow_pending).then_some((m, s))
    }

    /// Checks the indexes against a scan of every model: each GPU's ready set
    /// holds exactly the queued models whose first stage uses it, keyed by
    /// their head request, and its eviction set exactly the stages on it that
    /// may be evicted, keyed by their current victim key.
    pub(super) fn check_index(&self) -> Result<(), String> {
        let mut ready = vec![BTreeSet::new(); self.gpus.len()];
        let mut evictable = vec![BTreeSet::new(); self.gpus.len()];
        for (m, ms) in self.models.iter().enumerate() {
            let m = m as u32;
            let p = &self.placements[m as usize];
            if let Some(seq) = ms.queue.front_seq() {
                for &g in p.stage_gpus(0) {
                    ready[g as usize].insert((seq, m));
                }
            }
            if self.traits.preloads {
                continue;
            }
            for s in 0..p.pp {
                if let Some(k) = self.victim_key(m, s) {
                    for &g in p.stage_gpus(s) {
                        evictable[g as usize].insert((k, m, s));
                    }
                }
            }
        }
        for (g, ix) in self.gpus.iter().enumerate() {
            let valid = ix
                .ready
                .entries()
                .filter(|e| is_head(&self.models, e))
                .copied();
            let held = set_of(valid, ix.ready.live(), g, "ready")?;
            if held != ready[g] {
                return Err(format!(
                    "GPU {g}: ready set {held:?} differs from the queues {:?}",
                    ready[g]
                ));
            }
            let (entries, n) = ix.evictable.entries(|e| self.generations.live(e));
            let entries = entries.into_iter().map(|(k, m, s, _)| (k, m, s));
            let held = set_of(entries, n, g, "eviction")?;
            if held != evictable[g] {
                return Err(format!(
                    "GPU {g}: eviction set {held:?} differs from the stages' keys {:?}",
                    evictable[g]
                ));
            }
        }
        Ok(())
    }
}

/// Whether the ready entry `(seq, m)` is live: `seq` is model `m`'s head
/// request (read from the model's queue, which dispatching it reads next).
fn is_head(models: &[super::ModelState], &(seq, m): &(u64, u32)) -> bool {
    models[m as usize].queue.front_seq() == Some(seq)
}

/// The valid entries of GPU `g`'s `what` set as an ordered set; an error if
/// one is there twice or their number is not the `live` count the heap keeps.
fn set_of<T: Ord + Copy + std::fmt::Debug>(
    valid: impl Iterator<Item = T>,
    live: usize,
    g: usize,
    what: &str,
) -> Result<BTreeSet<T>, String> {
    let mut set = BTreeSet::new();
    for t in valid {
        if !set.insert(t) {
            return Err(format!("GPU {g}: {what} set holds {t:?} twice"));
        }
    }
    if set.len() != live {
        return Err(format!(
            "GPU {g}: {what} set holds {} valid entries, counts {live} live",
            set.len()
        ));
    }
    Ok(set)
}
