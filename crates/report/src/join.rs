//! Joining two runs request by request: they must have run the same
//! schedule (same ids, and per id the same model and arrival time).

use crate::runs::Run;
use switchyard_core::InputError;

/// Default arrival-time tolerance when matching schedules: one microsecond
/// (records are written with nanosecond precision).
pub const DEFAULT_ARRIVAL_TOL_S: f64 = 1e-6;

/// Record indices of `run` sorted by request id.
fn by_id(run: &Run) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..run.records.len()).collect();
    idx.sort_by_key(|&i| run.records[i].id);
    idx
}

/// Pairs `(index in a, index in b)` of the same request, in id order, if
/// `b` ran the same schedule as `a`: the same request ids, and per id the
/// same model and an arrival time within `tol_s`. Otherwise an error about
/// `b`'s file that names both files and the first (smallest) differing id;
/// lines are counted as in `requests.csv` (record `i` on line `i + 2`).
pub fn join(a: &Run, b: &Run, tol_s: f64) -> Result<Vec<(usize, usize)>, InputError> {
    let (ia, ib) = (by_id(a), by_id(b));
    let (na, nb) = (a.source.display(), b.source.display());
    let err = |line_b: Option<usize>, what: String| {
        InputError::new(
            &b.source,
            line_b.map(|i| i as u64 + 2),
            "id",
            format!("runs {na} and {nb} did not run the same schedule: {what}"),
        )
    };
    let mut pairs = Vec::with_capacity(ia.len());
    let (mut x, mut y) = (0, 0);
    loop {
        let (ra, rb) = (
            ia.get(x).map(|&i| &a.records[i]),
            ib.get(y).map(|&j| &b.records[j]),
        );
        let missing_in_b = |r: &switchyard_core::records::RequestRecord, x: usize| {
            err(
                None,
                format!(
                    "request id {} is in {na} (line {}) but not in {nb}",
                    r.id,
                    ia[x] + 2
                ),
            )
        };
        let missing_in_a = |s: &switchyard_core::records::RequestRecord, y: usize| {
            err(
                Some(ib[y]),
                format!("request id {} is in {nb} but not in {na}", s.id),
            )
        };
        match (ra, rb) {
            (None, None) => break,
            (Some(r), None) => return Err(missing_in_b(r, x)),
            (None, Some(s)) => return Err(missing_in_a(s, y)),
            (Some(r), Some(s)) if r.id < s.id => return Err(missing_in_b(r, x)),
            (Some(r), Some(s)) if s.id < r.id => return Err(missing_in_a(s, y)),
            (Some(r), Some(s)) => {
                if y + 1 < ib.len() && b.records[ib[y + 1]].id == s.id
                    || x + 1 < ia.len() && a.records[ia[x + 1]].id == r.id
                {
                    return Err(err(
                        Some(ib[y]),
                        format!("request id {} appears more than once", r.id),
                    ));
                }
                if r.model != s.model {
                    return Err(err(
                        Some(ib[y]),
                        format!(
                            "request id {} is for model `{}` in {na} (line {}) but `{}` in {nb}",
                            r.id,
                            r.model,
                            ia[x] + 2,
                            s.model
                        ),
                    ));
                }
                if (r.arrival_s - s.arrival_s).abs() > tol_s
                    || r.arrival_s.is_nan() != s.arrival_s.is_nan()
                {
                    return Err(err(
                        Some(ib[y]),
                        format!(
                            "request id {} arrives at {:.9} s in {na} (line {}) but at {:.9} s in {nb}",
                            r.id,
                            r.arrival_s,
                            ia[x] + 2,
                            s.arrival_s
                        ),
                    ));
                }
                pairs.push((ia[x], ib[y]));
                x += 1;
                y += 1;
            }
        }
    }
    Ok(pairs)
}

/// Mean over requests of `|latency in b - latency in a|`, seconds, joined
/// by request id (see [`join`] for the schedule check). `NaN` when empty.
pub fn mean_abs_error_s(a: &Run, b: &Run, tol_s: f64) -> Result<f64, InputError> {
    let pairs = join(a, b, tol_s)?;
    if pairs.is_empty() {
        return Ok(f64::NAN);
    }
    let sum: f64 = pairs
        .iter()
        .map(|&(i, j)| (b.records[j].latency_s - a.records[i].latency_s).abs())
        .sum();
    Ok(sum / pairs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::records::RequestRecord;

    fn run(name: &str, recs: &[(u64, &str, f64, f64)]) -> Run {
        let records = recs
            .iter()
            .map(|&(id, model, arrival_s, latency_s)| RequestRecord {
                id,
                model: model.into(),
                arrival_s,
                start_s: arrival_s,
                finish_s: arrival_s + latency_s,
                latency_s,
                batch_size: 1,
                cold: false,
            })
            .collect();
        Run::new(name, format!("{name}.csv"), records)
    }

    #[test]
    fn joins_in_any_order() {
        let a = run(
            "a",
            &[(1, "m", 0.0, 1.0), (2, "m", 1.0, 2.0), (3, "n", 2.0, 4.0)],
        );
        let b = run(
            "b",
            &[(3, "n", 2.0, 1.0), (1, "m", 0.0, 1.5), (2, "m", 1.0, 2.0)],
        );
        assert_eq!(join(&a, &b, 0.0).unwrap(), vec![(0, 1), (1, 2), (2, 0)]);
        // |1.5-1| + |2-2| + |1-4| = 3.5 over 3 requests.
        assert_eq!(mean_abs_error_s(&a, &b, 0.0).unwrap(), 3.5 / 3.0);
    }

    #[test]
    fn names_first_differing_id() {
        let a = run(
            "a",
            &[(1, "m", 0.0, 1.0), (2, "m", 1.0, 1.0), (5, "m", 2.0, 1.0)],
        );
        let b = run(
            "b",
            &[(1, "m", 0.0, 1.0), (5, "m", 2.0, 1.0), (4, "m", 2.0, 1.0)],
        );
        let e = join(&a, &b, 0.0).unwrap_err();
        assert!(
            e.message
                .contains("request id 2 is in a.csv (line 3) but not in b.csv"),
            "{e}"
        );
        let e = join(&b, &a, 0.0).unwrap_err();
        assert!(
            e.message
                .contains("request id 2 is in a.csv but not in b.csv"),
            "{e}"
        );
        assert_eq!(e.line, Some(3));
        let c = run(
            "c",
            &[(1, "m", 0.0, 1.0), (2, "m", 1.5, 1.0), (5, "x", 2.0, 1.0)],
        );
        let e = join(&a, &c, 1e-6).unwrap_err();
        assert!(
            e.message.contains("request id 2 arrives at 1.000000000 s"),
            "{e}"
        );
        assert!(join(&a, &c, 0.6).unwrap_err().message.contains("model `m`"));
        let short = run("s", &[(1, "m", 0.0, 1.0)]);
        assert!(join(&a, &short, 0.0)
            .unwrap_err()
            .message
            .contains("request id 2"));
    }
}
