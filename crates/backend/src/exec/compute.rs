//! Issuing a compute: its run of layers set up, stepped one layer per
//! pump (or as one graph), and finished with its completion event.

use super::*;

impl Executor {
    /// Starts issuing a compute: its input pulled from the previous stage,
    /// an output slot taken, its GPUs counted busy.
    pub(super) fn begin_compute(&mut self, op: ComputeOp) -> Result<()> {
        let g = op.gpus[0];
        if let Some(input) = op.input {
            let (x, bytes) = forward::hidden(
                &self.layouts[op.model],
                op.requests.len(),
                self.pool.ws_base,
            );
            self.hand
                .pull(self.dev.as_mut(), &self.pool, input, &op.gpus, x, bytes)?;
        }
        let slot = self.next_slot[g];
        self.next_slot[g] = (slot + 1) % OUT_SLOTS;
        if let Some(k) = self.out_busy[g][slot].take() {
            if let Some(c) = self.issued_computes.iter().find(|c| c.key == k) {
                for &e in &c.done {
                    self.dev.synchronize(e)?;
                }
            }
        }
        self.out_busy[g][slot] = Some(op.key);
        for &gg in &op.gpus {
            self.inflight[gg] += 1;
        }
        let pass = self.with_run(&op, slot, |_, r| forward::Pass::new(r))?;
        self.issuing.push(Issuing {
            op,
            pass,
            slot,
            host_s: 0.0,
        });
        Ok(())
    }

    /// Issues up to `max_layers` more layers of issuing compute `i`; whether
    /// all its layers are issued. Layers behind a copy wait are issued too
    /// (their launches queue on the GPU), so each group runs as soon as its
    /// copy lands, as PipeSwitch pipelines them.
    pub(super) fn step_compute(&mut self, i: usize, max_layers: usize) -> Result<bool> {
        let mut c = std::mem::replace(
            &mut self.issuing[i],
            Issuing {
                op: ComputeOp::default(),
                pass: forward::Pass::default(),
                slot: 0,
                host_s: 0.0,
            },
        );
        let mut graphs = std::mem::take(&mut self.graphs);
        let t = Instant::now();
        let done = self.with_run(&c.op, c.slot, |dev, r| {
            let how = graphs.step(dev, &mut c.pass, r, max_layers)?;
            Ok((how, c.pass.issued_all(r)))
        });
        let s = t.elapsed().as_secs_f64();
        c.host_s += s;
        self.graphs = graphs;
        self.issuing[i] = c;
        let (how, done) = done?;
        match how {
            forward::Issued::Layers => self.issue.layer(s),
            forward::Issued::Graph => self.issue.graph(s),
            forward::Issued::Captured(updated) => self.issue.capture(s, updated),
        }
        Ok(done)
    }

    /// Ends an issued compute: output copy, hand-over to the next stage,
    /// done events.
    pub(super) fn finish_compute(&mut self, c: Issuing) -> Result<()> {
        let Issuing {
            op,
            pass,
            slot,
            host_s,
        } = c;
        let g = op.gpus[0];
        let start = self.with_run(&op, slot, |dev, r| pass.finish(dev, r))?;
        if !op.handoff_to.is_empty() {
            let (x, bytes) = forward::hidden(
                &self.layouts[op.model],
                op.requests.len(),
                self.pool.ws_base,
            );
            let out = handoff::Outgoing {
                key: op.key,
                gpu: g,
                to: &op.handoff_to,
                x,
                bytes,
            };
            self.hand.push(self.dev.as_mut(), &self.pool, out)?;
        }
        let mut done = Vec::with_capacity(op.gpus.len());
        for &gg in &op.gpus {
            done.push(self.dev.record(gg, StreamKind::Compute)?);
        }
        self.issued_computes.push(IssuedCompute {
            key: op.key,
            gpus: op.gpus,
            start,
            done,
            host_s,
        });
        Ok(())
    }

    /// Calls `f` with the device and the [`forward::Run`] of `op` as things
    /// stand now: its waits are the copies not yet seen done.
    pub(super) fn with_run<T>(
        &mut self,
        op: &ComputeOp,
        slot: usize,
        f: impl FnOnce(&mut dyn Device, &forward::Run) -> Result<T>,
    ) -> Result<T> {
        let mut waits = Vec::new();
        for (r, c) in &op.waits {
            if let Some(CopyState::Issued(e)) = self.copies.get(c) {
                waits.push((r.clone(), *e));
            }
        }
        let g = op.gpus[0];
        let pool = &self.pool;
        let shard = &self.shards[op.model];
        let gpus = &op.gpus;
        let addr = |rank: usize, l: usize| pool.addr(gpus[rank], op.model, l);
        let side = |rank: usize, l: usize| {
            pool.side_slot(gpus[rank], op.model, shard.stage_of[l])
                .map(|b| b + shard.side_offsets[l])
        };
        let run = forward::Run {
            gpus,
            layout: &self.layouts[op.model],
            shard,
            layers: op.layers.clone(),
            addr: &addr,
            side: &side,
            requests: &op.requests,
            ws: pool.ws_base,
            waits: &waits,
            out: Some((&self.out[g], slot as u64 * self.out_slot_bytes)),
            gemm_rate: self.gemm_rate_for(self.layouts[op.model].dtype),
            synthetic_slope: self.synthetic_slope,
        };
        f(self.dev.as_mut(), &run)
    }
}
