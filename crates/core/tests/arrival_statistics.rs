//! Statistical tests of the arrival processes (statrs laws, KS at 1%).

use rand::rngs::StdRng;
use rand::SeedableRng;
use statrs::distribution::{ContinuousCDF, Exp, Gamma};
use switchyard_core::arrivals::{arrival_times, arrivals};
use switchyard_core::workload::{ArrivalSpec, Process, Skew};

const N: usize = 200_000;

/// Inter-arrival gaps of the first `N` arrivals of `process`.
fn gaps(process: &Process, rate: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Long enough for N arrivals with a wide margin.
    let times = arrival_times(process, 1.3 * N as f64 / rate, &mut rng);
    assert!(times.len() > N, "only {} arrivals", times.len());
    let mut prev = 0.0;
    times[..N]
        .iter()
        .map(|&t| {
            let g = t - prev;
            prev = t;
            g
        })
        .collect()
}

fn mean_cv(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt() / mean)
}

/// One-sample Kolmogorov-Smirnov statistic of `x` against `cdf`.
fn ks_statistic(x: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = cdf(v);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// Critical value of the KS statistic at significance 1% (asymptotic Kolmogorov law).
fn ks_critical_1pct(n: usize) -> f64 {
    (-(0.01f64 / 2.0).ln() / 2.0).sqrt() / (n as f64).sqrt()
}

#[test]
fn gamma_interarrivals_have_rate_cv_and_law() {
    for (rate, cv, seed) in [(12.0, 0.5, 1), (12.0, 1.5, 2), (3.0, 2.0, 3)] {
        let mut g = gaps(&Process::Gamma { rate, cv }, rate, seed);
        let (mean, sample_cv) = mean_cv(&g);
        assert!(
            (mean * rate - 1.0).abs() < 0.01,
            "rate {rate} cv {cv}: mean {mean} vs {}",
            1.0 / rate
        );
        assert!(
            (sample_cv / cv - 1.0).abs() < 0.03,
            "rate {rate} cv {cv}: sample cv {sample_cv}"
        );
        let law = Gamma::new(1.0 / (cv * cv), rate / (cv * cv)).unwrap();
        let d = ks_statistic(&mut g, |x| law.cdf(x));
        assert!(
            d < ks_critical_1pct(N),
            "rate {rate} cv {cv}: KS {d} rejects at 1%"
        );
    }
}

#[test]
fn poisson_interarrivals_are_exponential() {
    let rate = 7.0;
    let mut g = gaps(&Process::Poisson { rate }, rate, 11);
    let (mean, cv) = mean_cv(&g);
    assert!((mean * rate - 1.0).abs() < 0.01, "mean {mean}");
    assert!((cv - 1.0).abs() < 0.03, "cv {cv}");
    let law = Exp::new(rate).unwrap();
    let d = ks_statistic(&mut g, |x| law.cdf(x));
    assert!(d < ks_critical_1pct(N), "KS {d}");
}

#[test]
fn ks_test_rejects_the_wrong_law() {
    // The test above would catch a generator with the wrong shape.
    let mut g = gaps(&Process::Gamma { rate: 5.0, cv: 1.5 }, 5.0, 4);
    let law = Exp::new(5.0).unwrap();
    assert!(ks_statistic(&mut g, |x| law.cdf(x)) > ks_critical_1pct(N));
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

fn shares_of(v: &[(f64, u32)], n: usize) -> Vec<f64> {
    let mut c = vec![0usize; n];
    for (_, m) in v {
        c[*m as usize] += 1;
    }
    c.iter().map(|&k| k as f64 / v.len() as f64).collect()
}

#[test]
fn zipf_shares_match_theory() {
    for per_model in [false, true] {
        let spec = ArrivalSpec {
            process: Process::Poisson { rate: 1000.0 },
            skew: Skew::Zipf(1.0),
            per_model,
        };
        let mut rng = StdRng::seed_from_u64(5);
        let v = arrivals(&spec, &names(4), 1000.0, &mut rng).unwrap();
        let theory = Skew::Zipf(1.0).shares(4);
        for (got, want) in shares_of(&v, 4).iter().zip(&theory) {
            assert!(
                (got / want - 1.0).abs() < 0.01,
                "per_model {per_model}: share {got} vs {want}"
            );
        }
    }
}

#[test]
fn weights_set_shares() {
    let spec = ArrivalSpec {
        process: Process::Gamma {
            rate: 500.0,
            cv: 2.0,
        },
        skew: Skew::Weights(vec![3.0, 1.0]),
        per_model: false,
    };
    let mut rng = StdRng::seed_from_u64(9);
    let v = arrivals(&spec, &names(2), 400.0, &mut rng).unwrap();
    let s = shares_of(&v, 2);
    assert!((s[0] - 0.75).abs() < 0.005, "{s:?}");
}

#[test]
fn huge_weights_do_not_overflow_their_sum() {
    let shares = Skew::Weights(vec![1e308, 1e308, 5e307]).shares(3);
    assert_eq!(shares, vec![0.4, 0.4, 0.2]);
    let spec = ArrivalSpec {
        process: Process::Poisson { rate: 100.0 },
        skew: Skew::Weights(vec![1e308, 1e308]),
        per_model: false,
    };
    let mut rng = StdRng::seed_from_u64(9);
    let v = arrivals(&spec, &names(2), 10.0, &mut rng).unwrap();
    assert!(v.len() > 500);
}

#[test]
fn on_off_process_has_its_mean_rate_and_is_burstier_than_poisson() {
    let p = Process::OnOff {
        rate_on: 50.0,
        rate_off: 1.0,
        mean_on_s: 2.0,
        mean_off_s: 8.0,
    };
    let mean_rate = p.mean_rate().unwrap();
    assert!((mean_rate - 10.8).abs() < 1e-12);
    let mut g = gaps(&p, mean_rate, 6);
    let (mean, cv) = mean_cv(&g);
    // The rate averages over only ~1,850 on/off cycles, whose counts vary a
    // lot (sd ~2.2% of the mean over N arrivals): allow 8%, about 3.6 sigma.
    assert!(
        (mean * mean_rate - 1.0).abs() < 0.08,
        "mean gap {mean} vs {}",
        1.0 / mean_rate
    );
    assert!(
        cv > 1.5,
        "cv {cv}: modulation should make gaps burstier than exponential"
    );
    let law = Exp::new(mean_rate).unwrap();
    assert!(ks_statistic(&mut g, |x| law.cdf(x)) > ks_critical_1pct(N));
}

#[test]
fn round_robin_models_take_turns_at_fixed_spacing() {
    let spec = ArrivalSpec {
        process: Process::RoundRobin { rate: 4.0 },
        skew: Skew::Uniform,
        per_model: false,
    };
    let mut rng = StdRng::seed_from_u64(0);
    let v = arrivals(&spec, &names(3), 3.0, &mut rng).unwrap();
    assert_eq!(v.len(), 12);
    for (k, (t, m)) in v.iter().enumerate() {
        assert_eq!(*t, k as f64 / 4.0);
        assert_eq!(*m as usize, k % 3);
    }
}
