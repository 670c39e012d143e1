//! The serving policy's parts (`policy:`): system, eviction, grouping,
//! their names, and [`PolicySpec`].

use serde::Deserialize;

/// Which serving system runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Model-parallel swapping over all shards' links at once (Computron).
    Computron,
    /// Pipelined layer-group loading on one GPU (PipeSwitch).
    Pipeswitch,
    /// Pageable copy of the whole model, then run.
    StopAndStart,
    /// No swapping: every model stays in GPU memory.
    Resident,
    /// Every request streams its layers; nothing is cached.
    Streaming,
}

impl System {
    /// Every system, in the order `--compare-systems` runs them.
    pub const ALL: [System; 5] = [
        System::Computron,
        System::Pipeswitch,
        System::StopAndStart,
        System::Resident,
        System::Streaming,
    ];

    /// The name used in YAML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            System::Computron => "computron",
            System::Pipeswitch => "pipeswitch",
            System::StopAndStart => "stop-and-start",
            System::Resident => "resident",
            System::Streaming => "streaming",
        }
    }
}

/// Names accepted where a policy part is given by name (YAML, command line).
pub trait PolicyName: Sized + Copy + 'static {
    /// Every value, in a fixed order.
    const VALUES: &'static [Self];
    /// The value's name.
    fn name(self) -> &'static str;
    /// The value named `s`, or an error listing every name.
    fn from_name(s: &str) -> std::result::Result<Self, String> {
        Self::VALUES
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::VALUES.iter().map(|v| v.name()).collect();
                format!("`{s}` is not one of {}", names.join(", "))
            })
    }
}

impl PolicyName for System {
    const VALUES: &'static [System] = &System::ALL;
    fn name(self) -> &'static str {
        System::name(self)
    }
}

impl PolicyName for Eviction {
    const VALUES: &'static [Eviction] = &[Eviction::Lru, Eviction::Lfu, Eviction::Belady];
    fn name(self) -> &'static str {
        match self {
            Eviction::Lru => "lru",
            Eviction::Lfu => "lfu",
            Eviction::Belady => "belady",
        }
    }
}

impl PolicyName for Grouping {
    const VALUES: &'static [Grouping] =
        &[Grouping::Optimal, Grouping::PerLayer, Grouping::OneGroup];
    fn name(self) -> &'static str {
        match self {
            Grouping::Optimal => "optimal",
            Grouping::PerLayer => "per_layer",
            Grouping::OneGroup => "one_group",
        }
    }
}

/// Which model to evict when memory is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eviction {
    /// Least recently used.
    Lru,
    /// Least frequently used.
    Lfu,
    /// Offline optimum: the model whose next request is furthest ahead.
    Belady,
}

/// How a model's layers are grouped into copies (PipeSwitch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The grouping that minimises the pipeline's finish time (dynamic program).
    Optimal,
    /// One layer per group.
    PerLayer,
    /// The whole model in one group (no pipelining).
    OneGroup,
}

/// The serving policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySpec {
    /// Serving system.
    pub system: System,
    /// Eviction policy.
    pub eviction: Eviction,
    /// Layer grouping for pipelined loads.
    pub grouping: Grouping,
    /// Most models that may hold weights on one GPU at once, besides the
    /// memory limit (Computron's `max_loaded`); `None`: memory alone.
    pub max_loaded: Option<u32>,
    /// An eviction copies the evicted weights back to host memory
    /// (`policy.offload`, Computron's `.to("cpu")`), and the memory is free
    /// only once that copy is done; `false`: the weights are dropped (the
    /// host keeps its copy) and the memory is free at once.
    pub offload: bool,
}
