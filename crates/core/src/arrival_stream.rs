//! Arrivals generated lazily: an [`ArrivalPlan`] counts a workload's
//! requests once (drawing and dropping them, so nothing is held), then hands
//! out [`ArrivalStream`]s that draw the same requests again in time order,
//! one at a time. The draws are those of [`crate::arrivals::generate`] in
//! the same order, so a stream yields exactly the schedule it would build.
//!
//! - one process shared by the models: its times come from the workload's
//!   generator, then the model picks, from the state that generator is in
//!   once every time is drawn (found by the counting pass);
//! - `per_model` processes: one generator per model (seeded from the
//!   workload's, in model order), merged with a heap on (time, model);
//! - `round_robin`: computed;
//! - traces: read whole (they are files already), then streamed.

use crate::arrivals::gamma_interarrival;
use crate::schedule::{round_ns, Request};
use crate::weighted_pick::WeightedPick;
use crate::workload::Process;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How a workload's requests are drawn, with their count: a recipe for as
/// many identical [`ArrivalStream`]s as wanted.
#[derive(Debug, Clone)]
pub struct ArrivalPlan {
    kind: PlanKind,
    len: u64,
    /// Times at or past this are never drawn.
    duration_s: f64,
}

#[derive(Debug, Clone)]
enum PlanKind {
    /// Requests held whole (a trace).
    Listed(Vec<Request>),
    /// `k / rate` for k in 0..n, model `k % models`.
    RoundRobin { n: u64, rate: f64, models: u32 },
    /// One process; picks drawn from `picks` (the generator after the times).
    Pooled {
        process: Process,
        times: Box<StdRng>,
        picks: Box<StdRng>,
        shares: Vec<f64>,
    },
    /// One process per model: (model, its seed, its scaled process).
    PerModel(Vec<(u32, u64, Process)>),
}

impl ArrivalPlan {
    /// A plan listing `requests` as they are (already sorted and numbered).
    pub fn listed(requests: Vec<Request>) -> ArrivalPlan {
        ArrivalPlan {
            len: requests.len() as u64,
            kind: PlanKind::Listed(requests),
            duration_s: f64::INFINITY,
        }
    }

    /// Round robin over `models` at `rate` for `duration_s`.
    pub(crate) fn round_robin(rate: f64, models: usize, duration_s: f64) -> ArrivalPlan {
        let n = (duration_s * rate).ceil() as u64;
        let len = (0..n).filter(|&k| (k as f64 / rate) < duration_s).count() as u64;
        ArrivalPlan {
            kind: PlanKind::RoundRobin {
                n,
                rate,
                models: models as u32,
            },
            len,
            duration_s,
        }
    }

    /// One `process` shared by the models by `shares`, drawn from `rng`:
    /// counts its times (at most `cap`), leaving `rng` where the picks start.
    pub(crate) fn pooled(
        process: &Process,
        shares: Vec<f64>,
        duration_s: f64,
        rng: &mut StdRng,
        cap: u64,
    ) -> ArrivalPlan {
        let times = rng.clone();
        let mut count = TimeStream::new(process, duration_s, rng.clone());
        let mut len = 0;
        while len < cap && count.next().is_some() {
            len += 1;
        }
        *rng = count.rng;
        ArrivalPlan {
            kind: PlanKind::Pooled {
                process: process.clone(),
                times: Box::new(times),
                picks: Box::new(rng.clone()),
                shares,
            },
            len,
            duration_s,
        }
    }

    /// One stream per model with a positive share, seeded from `rng` in
    /// model order; counting stops once `cap` is reached (as the old
    /// generator did: each stream capped alone, the sum checked after each).
    pub(crate) fn per_model(
        process: &Process,
        shares: &[f64],
        duration_s: f64,
        rng: &mut StdRng,
        cap: u64,
    ) -> ArrivalPlan {
        let mut streams = Vec::new();
        let mut len = 0u64;
        for (m, share) in shares.iter().enumerate() {
            if *share <= 0.0 {
                continue;
            }
            let seed: u64 = rng.random();
            let p = process.scaled(*share);
            let mut s = TimeStream::new(&p, duration_s, StdRng::seed_from_u64(seed));
            let mut n = 0;
            while n < cap && s.next().is_some() {
                n += 1;
            }
            len += n;
            streams.push((m as u32, seed, p));
            if len >= cap {
                break;
            }
        }
        ArrivalPlan {
            kind: PlanKind::PerModel(streams),
            len,
            duration_s,
        }
    }

    /// Number of requests every stream of this plan yields.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the plan draws no request.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The requests held whole, for a plan that holds them (a trace).
    pub(crate) fn listed_requests(&self) -> Option<&[Request]> {
        match &self.kind {
            PlanKind::Listed(v) => Some(v),
            _ => None,
        }
    }

    /// A fresh stream of this plan's requests from the first, in arrival
    /// order, numbered from 0, times rounded to the nanosecond.
    pub fn stream(&self) -> ArrivalStream<'_> {
        let duration_s = self.duration_s;
        let source = match &self.kind {
            PlanKind::Listed(v) => Source::Listed(v.iter()),
            PlanKind::RoundRobin { n, rate, models } => Source::RoundRobin {
                k: 0,
                n: *n,
                rate: *rate,
                models: *models,
                duration_s,
            },
            PlanKind::Pooled {
                process,
                times,
                picks,
                shares,
            } => Source::Pooled {
                times: Box::new(TimeStream::new(process, duration_s, (**times).clone())),
                picks: Box::new(Picks::new(
                    (**picks).clone(),
                    WeightedPick::new(shares).expect("shares are validated positive"),
                )),
            },
            PlanKind::PerModel(streams) => {
                let mut heap = BinaryHeap::with_capacity(streams.len());
                let mut live: Vec<TimeStream> = Vec::with_capacity(streams.len());
                for (i, (_, seed, p)) in streams.iter().enumerate() {
                    let mut s = TimeStream::new(p, duration_s, StdRng::seed_from_u64(*seed));
                    if let Some(t) = s.next() {
                        heap.push(Reverse((t.to_bits(), i as u32)));
                    }
                    live.push(s);
                }
                Source::PerModel {
                    models: streams.iter().map(|s| s.0).collect(),
                    live,
                    heap,
                }
            }
        };
        ArrivalStream {
            source,
            next_id: 0,
            left: self.len,
        }
    }
}

/// Requests in arrival order, drawn one at a time (see [`ArrivalPlan`]).
pub struct ArrivalStream<'a> {
    source: Source<'a>,
    next_id: u64,
    /// Requests still to yield (the plan's count: a stream never yields more).
    left: u64,
}

enum Source<'a> {
    Listed(std::slice::Iter<'a, Request>),
    RoundRobin {
        k: u64,
        n: u64,
        rate: f64,
        models: u32,
        duration_s: f64,
    },
    Pooled {
        times: Box<TimeStream>,
        picks: Box<Picks>,
    },
    PerModel {
        /// Model of each live stream.
        models: Vec<u32>,
        live: Vec<TimeStream>,
        /// (time bits, stream): the earliest first, ties by model order.
        heap: BinaryHeap<Reverse<(u64, u32)>>,
    },
}

impl Iterator for ArrivalStream<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.left == 0 {
            return None;
        }
        let (t, model) = match &mut self.source {
            Source::Listed(it) => return it.next().copied().inspect(|_| self.left -= 1),
            Source::RoundRobin {
                k,
                n,
                rate,
                models,
                duration_s,
            } => {
                if *k >= *n {
                    return None;
                }
                let t = *k as f64 / *rate;
                if t >= *duration_s {
                    return None;
                }
                let m = (*k % *models as u64) as u32;
                *k += 1;
                (t, m)
            }
            Source::Pooled { times, picks } => {
                let t = times.next()?;
                (t, picks.next())
            }
            Source::PerModel { models, live, heap } => {
                let Reverse((bits, i)) = heap.pop()?;
                if let Some(t) = live[i as usize].next() {
                    heap.push(Reverse((t.to_bits(), i)));
                }
                (f64::from_bits(bits), models[i as usize])
            }
        };
        self.left -= 1;
        let id = self.next_id;
        self.next_id += 1;
        Some(Request {
            id,
            arrival_s: round_ns(t),
            model,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// Model picks of a pooled process, drawn [`PICK_AHEAD`] at a time: the
/// same draws in the same order as one at a time (the generator is the
/// picks' own), but a run of independent guide-table lookups lets the CPU
/// overlap their cache misses (a 100,000-model table is larger than cache).
/// Picks drawn past the stream's last request are never yielded.
struct Picks {
    rng: StdRng,
    pick: WeightedPick,
    ahead: [u32; PICK_AHEAD],
    /// Next index of `ahead` to yield (`PICK_AHEAD`: draw again).
    at: usize,
}

/// How many model picks [`Picks`] draws at once.
const PICK_AHEAD: usize = 32;

impl Picks {
    fn new(rng: StdRng, pick: WeightedPick) -> Picks {
        Picks {
            rng,
            pick,
            ahead: [0; PICK_AHEAD],
            at: PICK_AHEAD,
        }
    }

    fn next(&mut self) -> u32 {
        if self.at == PICK_AHEAD {
            for slot in &mut self.ahead {
                *slot = self.pick.sample(&mut self.rng) as u32;
            }
            self.at = 0;
        }
        self.at += 1;
        self.ahead[self.at - 1]
    }
}

/// Inter-arrival law of a renewal process.
#[derive(Debug, Clone)]
enum Gap {
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
}

impl Gap {
    fn sample(&self, rng: &mut StdRng) -> f64 {
        match self {
            Gap::Exp(d) => d.sample(rng),
            Gap::Gamma(d) => d.sample(rng),
        }
    }
}

/// Arrival times in `[0, duration_s)` of one random stream, drawn lazily
/// with exactly the draws of `arrivals::arrival_times`, in its order.
#[derive(Debug, Clone)]
pub(crate) struct TimeStream {
    rng: StdRng,
    duration_s: f64,
    law: Law,
    /// The next candidate time.
    t: f64,
}

#[derive(Debug, Clone)]
enum Law {
    Renewal(Gap),
    OnOff {
        on_len: Exp<f64>,
        off_len: Exp<f64>,
        rate_on: f64,
        rate_off: f64,
        /// Start and end of the current period.
        start: f64,
        end: f64,
        on: bool,
        /// Gaps of the current period, while it is being drawn.
        gap: Option<Exp<f64>>,
    },
}

impl TimeStream {
    /// The stream of `process` (Poisson, Gamma or on/off) drawn from `rng`.
    ///
    /// Panics for `Trace` and `RoundRobin`, which are not random streams.
    pub(crate) fn new(process: &Process, duration_s: f64, mut rng: StdRng) -> TimeStream {
        let (law, t) = match *process {
            Process::Poisson { rate } => {
                let gap = Gap::Exp(Exp::new(rate).expect("rate > 0"));
                let t = gap.sample(&mut rng);
                (Law::Renewal(gap), t)
            }
            Process::Gamma { rate, cv } => {
                let gap = Gap::Gamma(gamma_interarrival(rate, cv));
                let t = gap.sample(&mut rng);
                (Law::Renewal(gap), t)
            }
            Process::OnOff {
                rate_on,
                rate_off,
                mean_on_s,
                mean_off_s,
            } => (
                Law::OnOff {
                    on_len: Exp::new(1.0 / mean_on_s).expect("mean_on_s > 0"),
                    off_len: Exp::new(1.0 / mean_off_s).expect("mean_off_s > 0"),
                    rate_on,
                    rate_off,
                    start: 0.0,
                    end: 0.0,
                    on: true,
                    gap: None,
                },
                0.0,
            ),
            Process::RoundRobin { .. } | Process::Trace { .. } | Process::ClosedLoop(_) => {
                panic!("not a random stream: {process:?}")
            }
        };
        TimeStream {
            rng,
            duration_s,
            law,
            t,
        }
    }
}

impl Iterator for TimeStream {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let rng = &mut self.rng;
        match &mut self.law {
            Law::Renewal(gap) => {
                if self.t < self.duration_s {
                    let out = self.t;
                    self.t += gap.sample(rng);
                    Some(out)
                } else {
                    None
                }
            }
            Law::OnOff {
                on_len,
                off_len,
                rate_on,
                rate_off,
                start,
                end,
                on,
                gap,
            } => loop {
                if let Some(g) = gap {
                    if self.t < *end {
                        let out = self.t;
                        self.t += g.sample(rng);
                        return Some(out);
                    }
                    *gap = None;
                    *start = *end;
                    *on = !*on;
                }
                if *start >= self.duration_s {
                    return None;
                }
                let len = if *on {
                    on_len.sample(rng)
                } else {
                    off_len.sample(rng)
                };
                *end = (*start + len).min(self.duration_s);
                let rate = if *on { *rate_on } else { *rate_off };
                if rate > 0.0 {
                    let g = Exp::new(rate).expect("rate > 0");
                    self.t = *start + g.sample(rng);
                    *gap = Some(g);
                } else {
                    *start = *end;
                    *on = !*on;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrivals::arrivals;
    use crate::schedule::Schedule;
    use crate::workload::{ArrivalSpec, Skew};
    use proptest::prelude::*;

    /// The plan of `spec` as `arrivals::plan` builds it (random processes).
    fn plan_of(spec: &ArrivalSpec, models: usize, duration_s: f64, seed: u64) -> ArrivalPlan {
        let mut rng = StdRng::seed_from_u64(seed);
        let shares = spec.skew.shares(models);
        if spec.per_model {
            ArrivalPlan::per_model(&spec.process, &shares, duration_s, &mut rng, u64::MAX)
        } else {
            ArrivalPlan::pooled(&spec.process, shares, duration_s, &mut rng, u64::MAX)
        }
    }

    fn process(kind: u8, rate: f64, cv: f64) -> Process {
        match kind {
            0 => Process::Poisson { rate },
            1 => Process::Gamma { rate, cv },
            _ => Process::OnOff {
                rate_on: rate * 3.0,
                rate_off: if kind == 2 { 0.0 } else { rate / 4.0 },
                mean_on_s: 0.7,
                mean_off_s: 1.3,
            },
        }
    }

    proptest! {
        /// A stream yields exactly the schedule the eager generator builds
        /// from the same seed: same times, models and order.
        #[test]
        fn stream_equals_the_eager_schedule(
            kind in 0u8..4,
            per_model in any::<bool>(),
            models in 1usize..12,
            rate in 1.0f64..400.0,
            cv in 0.2f64..4.0,
            zipf in 0.0f64..1.5,
            duration_s in 0.5f64..20.0,
            seed in any::<u64>(),
        ) {
            let spec = ArrivalSpec {
                process: process(kind, rate, cv),
                skew: Skew::Zipf(zipf),
                per_model,
            };
            let names: Vec<String> = (0..models).map(|i| format!("m{i}")).collect();
            let mut rng = StdRng::seed_from_u64(seed);
            let eager = arrivals(&spec, &names, duration_s, &mut rng).unwrap();
            let want = Schedule::from_arrivals(names, eager).requests;
            let plan = plan_of(&spec, models, duration_s, seed);
            prop_assert_eq!(plan.len(), want.len() as u64);
            let got: Vec<Request> = plan.stream().collect();
            prop_assert_eq!(&got, &want);
            // A second stream of the same plan is the same again.
            let again: Vec<Request> = plan.stream().collect();
            prop_assert_eq!(&again, &want);
        }
    }

    #[test]
    fn round_robin_cycles_through_the_models() {
        let plan = ArrivalPlan::round_robin(4.0, 3, 1.0);
        let got: Vec<(f64, u32)> = plan.stream().map(|r| (r.arrival_s, r.model)).collect();
        assert_eq!(got, vec![(0.0, 0), (0.25, 1), (0.5, 2), (0.75, 0)]);
        assert_eq!(plan.len(), 4);
    }
}
