//! Which host CPUs replay's one host thread may run on (`--pin-cpus`).
//!
//! A warm pass issued layer by layer is bound by that thread: on an H100,
//! BERT-large at batch 1 ran 3.10 ms issued live against 1.83 ms queued
//! behind a copy (`results/validation/h100_current/profile.yaml`), and the
//! same class of pass wandered by up to 20% between quarters of one replay
//! (`results/validation/warm_wander.md`). Keeping the thread on the CPUs of
//! the GPU's own NUMA node (`auto`) or on a given list removes migration as
//! a cause; `off` (the default) leaves the scheduler of the OS in charge.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::path::Path;

/// Where the host thread may run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CpuPin {
    /// Wherever the OS puts it.
    #[default]
    Off,
    /// The CPUs local to the first GPU (its PCI device's `local_cpulist`),
    /// within those the process may use.
    Auto,
    /// These CPUs.
    List(Vec<usize>),
}

impl CpuPin {
    /// Parses `off`, `auto` or a Linux CPU list (`0-7,16,18-19`).
    pub fn from_name(s: &str) -> Result<CpuPin, String> {
        match s.trim() {
            "off" => Ok(CpuPin::Off),
            "auto" => Ok(CpuPin::Auto),
            list => parse_cpu_list(list)
                .map(CpuPin::List)
                .map_err(|e| format!("{e} (expected off, auto or a CPU list such as 0-7,16)")),
        }
    }
}

/// The CPUs of a Linux CPU list (`0-3,8,10-11`), ascending, without repeats.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("empty entry in CPU list {s:?}"));
        }
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("{x:?} in CPU list {s:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} in CPU list {s:?} runs backwards"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The CPUs local to PCI device `bus_id` (`0000:1b:00.0`), read from
/// `sys_pci` (`/sys/bus/pci/devices` on Linux); `None` where the file is
/// missing, empty or unreadable (a VM may not say).
pub fn local_cpus(sys_pci: &Path, bus_id: &str) -> Option<Vec<usize>> {
    let text = std::fs::read_to_string(sys_pci.join(bus_id).join("local_cpulist")).ok()?;
    parse_cpu_list(&text).ok().filter(|c| !c.is_empty())
}

/// The CPUs the calling thread may run on now.
pub fn allowed_cpus() -> Result<Vec<usize>, String> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(|e| format!("sched_getaffinity: {e}"))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Restricts the calling thread to `cpus` (those of them it may use);
/// the CPUs it runs on from now. An error where none of `cpus` is allowed.
pub fn pin_current_thread(cpus: &[usize]) -> Result<Vec<usize>, String> {
    let allowed = allowed_cpus()?;
    let chosen: Vec<usize> = cpus
        .iter()
        .copied()
        .filter(|c| allowed.contains(c))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "none of CPUs {} may be used by this process (allowed: {})",
            cpu_list(cpus),
            cpu_list(&allowed)
        ));
    }
    let mut set = CpuSet::new();
    for &c in &chosen {
        set.set(c).map_err(|e| format!("CPU {c}: {e}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("sched_setaffinity: {e}"))?;
    Ok(chosen)
}

/// `cpus` as a compact Linux CPU list (`0-3,8`).
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", cpus[i], cpus[j])
        } else {
            cpus[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Applies `pin` to the calling thread, `gpu_bus_id` naming the first
/// GPU's PCI device (for `auto`): the CPU list it now runs on, or `None`
/// when unpinned (`off`, or `auto` where the GPU's locality is unknown,
/// which `note` is told).
pub fn apply(
    pin: &CpuPin,
    gpu_bus_id: Option<&str>,
    note: &mut dyn FnMut(String),
) -> Result<Option<String>, String> {
    let cpus = match pin {
        CpuPin::Off => return Ok(None),
        CpuPin::List(c) => c.clone(),
        CpuPin::Auto => {
            let local = gpu_bus_id
                .and_then(|id| local_cpus(Path::new("/sys/bus/pci/devices"), &id.to_lowercase()));
            match local {
                Some(c) => c,
                None => {
                    note(format!(
                        "--pin-cpus auto: the GPU's local CPUs are unknown ({}); the host thread is left unpinned",
                        gpu_bus_id.map_or("no PCI bus id".into(), |id| format!("no local_cpulist for {id}"))
                    ));
                    return Ok(None);
                }
            }
        }
    };
    pin_current_thread(&cpus).map(|c| Some(cpu_list(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_print() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("5,1,5").unwrap(), vec![1, 5]);
        assert_eq!(cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(cpu_list(&[]), "");
        for bad in ["", "1,,2", "3-1", "a", "1-x"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn pin_names() {
        assert_eq!(CpuPin::from_name("off").unwrap(), CpuPin::Off);
        assert_eq!(CpuPin::from_name("auto").unwrap(), CpuPin::Auto);
        assert_eq!(CpuPin::from_name("2-3").unwrap(), CpuPin::List(vec![2, 3]));
        let e = CpuPin::from_name("fast").unwrap_err();
        assert!(e.contains("expected off, auto"), "{e}");
    }

    #[test]
    fn local_cpus_read_from_sysfs_layout() {
        let dir = std::env::temp_dir().join(format!("sy-pci-{}", std::process::id()));
        let dev = dir.join("0000:1b:00.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("local_cpulist"), "0-15,32-47\n").unwrap();
        let c = local_cpus(&dir, "0000:1b:00.0").unwrap();
        assert_eq!(c.len(), 32);
        assert_eq!(cpu_list(&c), "0-15,32-47");
        assert!(local_cpus(&dir, "0000:99:00.0").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinning_a_thread_to_an_allowed_cpu_sticks() {
        // In a thread of its own, so the test harness's threads keep theirs.
        std::thread::spawn(|| {
            let allowed = allowed_cpus().unwrap();
            let first = allowed[0];
            let got = apply(&CpuPin::List(vec![first, 100_000]), None, &mut |_| {}).unwrap();
            assert_eq!(got, Some(first.to_string()));
            assert_eq!(allowed_cpus().unwrap(), vec![first]);
            let none = pin_current_thread(&[100_000]).unwrap_err();
            assert!(none.contains("none of CPUs 100000"), "{none}");
            let mut notes = Vec::new();
            assert_eq!(
                apply(&CpuPin::Auto, None, &mut |n| notes.push(n)).unwrap(),
                None
            );
            assert!(notes[0].contains("left unpinned"), "{notes:?}");
        })
        .join()
        .unwrap();
    }
}
