//! Issuing a load: a stage's copy groups (one copy per group and rank,
//! or the pieces of a multi-path plan) as the scheduler's actions.

use super::*;

impl Scheduler {
    /// Copies every group of stage `s` of model `m` into its regions, grouped
    /// for a compute of `batch` requests ([`Placement::groups_for`]). The
    /// groups go into the stage's `loading` as issued, so every compute that
    /// waits on this load waits on exactly these copies.
    pub(super) fn issue_load(&mut self, m: u32, s: u32, batch: u32, actions: &mut Vec<Action>) {
        let st = &mut self.models[m as usize].stages[s as usize];
        st.load_batch = batch;
        let regions = std::mem::take(&mut st.regions);
        let mut loading = std::mem::take(&mut st.loading);
        let load = StageLoad {
            model: m,
            stage: s,
            batch,
            regions: &regions,
            streamed: false,
        };
        let helpers = self.issue_copies(load, &mut loading, actions);
        let st = &mut self.models[m as usize].stages[s as usize];
        st.load_helpers = helpers;
        st.regions = regions;
        st.loading = loading;
        self.reindex_stage(m, s);
    }

    /// Issues one load ([`StageLoad`]) of stage `s` of model `m`: a copy per
    /// group of its grouping for a compute of `batch` requests, per
    /// tensor-parallel rank `r` into pool offset `regions[r]` (plus the
    /// group's offset), from the system's host memory; each copy is appended
    /// to `waits` as issued and counted in the model's load stats. A
    /// one-GPU stage under multi-path loading is grouped for the helper
    /// links lent to it now ([`Multipath::plan_lenders`],
    /// [`Placement::groups_via`]: every group of the load sees the same
    /// lenders, its own pieces holding only the target's link); returns
    /// the helper count the groups were planned for.
    pub(super) fn issue_copies(
        &mut self,
        load: StageLoad,
        waits: &mut impl Extend<(Range<u32>, CopyId)>,
        actions: &mut Vec<Action>,
    ) -> u32 {
        let StageLoad {
            model: m,
            stage: s,
            batch,
            regions,
            streamed,
        } = load;
        let mi = m as usize;
        let p = &self.placements[mi];
        let tp = p.tp as usize;
        let lenders = match &self.multipath {
            Some(mp) if tp == 1 => mp.plan_lenders(p.gpus[s as usize]),
            _ => 0,
        };
        let gs = p.groups_via(s, batch, lenders);
        // Layers left in host memory come first in the shard's host image.
        let host_skip = p.direct_bytes[s as usize];
        let mut pieces = std::mem::take(&mut self.pieces);
        for (range, &(goff, gbytes)) in gs.ranges.iter().zip(&gs.bytes) {
            for (r, &region) in regions[..tp].iter().enumerate() {
                let gpu = p.gpus[s as usize * tp + r];
                // Multi-path loading may split a one-GPU stage's group.
                Multipath::plan(self.multipath.as_mut(), gpu, gbytes, tp == 1, &mut pieces);
                for piece in &pieces {
                    let id = self.copies.alloc();
                    *self.copies.get_mut(id) = CopyMeta {
                        model: m,
                        stage: s,
                        streamed,
                        offload: None,
                    };
                    if let Some(mp) = &mut self.multipath {
                        mp.issued(id, gpu, piece);
                    }
                    actions.push(Action::Copy(CopyOp {
                        id,
                        model: m,
                        stage: s,
                        gpu,
                        shard: r as u32,
                        layers: range.clone(),
                        bytes: piece.bytes,
                        shard_offset: host_skip + goff + piece.offset,
                        pool_offset: region + goff + piece.offset,
                        source: self.traits.source,
                        streamed,
                        via: piece.via,
                        part: piece.part_of(gbytes, pieces.len()),
                    }));
                    waits.extend([(range.clone(), id)]);
                }
                self.stats[mi].bytes += gbytes;
            }
        }
        self.pieces = pieces;
        self.stats[mi].loads += 1;
        lenders
    }
}
