//! Model names laid out for lookups by index at scale: one array of
//! fixed-size slots, so that a name's address follows from its model's
//! index alone and can be fetched into cache ahead of use
//! ([`NameTable::prefetch`]) without first reading where it starts.
//!
//! At 100,000 models, the simulator writes a name into `schedule.csv` and
//! `requests.csv` for every request; with the names scattered over their
//! own allocations (or found through an offsets array) each write was a
//! cache miss or two.

/// Bytes before each name in its slot: its length, little-endian.
const LEN_BYTES: usize = 4;

/// Slots are a multiple of this many bytes.
const ALIGN: usize = 16;

/// Names of models `0..n`, each in a slot of `stride` bytes: its length
/// (`u32`, little-endian), then its bytes. Memory: `n` times the longest
/// name (plus 4, rounded up to 16 bytes).
#[derive(Debug, Clone)]
pub struct NameTable {
    slots: Vec<u8>,
    stride: usize,
}

impl NameTable {
    /// The table of `names`, in order.
    pub fn new<S: AsRef<str>>(names: &[S]) -> NameTable {
        let longest = names.iter().map(|n| n.as_ref().len()).max().unwrap_or(0);
        let stride = (LEN_BYTES + longest).next_multiple_of(ALIGN);
        let mut slots = vec![0u8; stride * names.len()];
        for (slot, name) in slots.chunks_exact_mut(stride).zip(names) {
            let name = name.as_ref().as_bytes();
            let len = u32::try_from(name.len()).expect("a model name under 4 GiB");
            slot[..LEN_BYTES].copy_from_slice(&len.to_le_bytes());
            slot[LEN_BYTES..LEN_BYTES + name.len()].copy_from_slice(name);
        }
        NameTable { slots, stride }
    }

    /// Model `m`'s name, as bytes (valid UTF-8: a `str`'s).
    #[inline]
    pub fn bytes(&self, m: u32) -> &[u8] {
        let slot = &self.slots[m as usize * self.stride..][..self.stride];
        let len = u32::from_le_bytes(slot[..LEN_BYTES].try_into().expect("4 bytes"));
        &slot[LEN_BYTES..LEN_BYTES + len as usize]
    }

    /// Model `m`'s name.
    pub fn get(&self, m: u32) -> &str {
        std::str::from_utf8(self.bytes(m)).expect("built from `str`s")
    }

    /// Asks the CPU to bring model `m`'s slot into cache (a hint: see
    /// [`crate::prefetch`]); out-of-range models are ignored.
    #[inline]
    pub fn prefetch(&self, m: u32) {
        if let Some(slot) = self.slots.get(m as usize * self.stride..) {
            crate::prefetch::prefetch_bytes(&slot[..self.stride.min(slot.len())]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameTable;

    #[test]
    fn names_come_back_whole() {
        let names = ["a", "", "model-with-a-long-name-past-one-slot", "m-12"];
        let t = NameTable::new(&names);
        for (m, n) in names.iter().enumerate() {
            assert_eq!(t.get(m as u32), *n);
        }
        // Hints only: in range or not, nothing happens.
        t.prefetch(3);
        t.prefetch(99);
        NameTable::new::<&str>(&[]).prefetch(0);
    }

    #[test]
    fn unicode_names_keep_their_bytes() {
        let names = ["λ-模型", "x"];
        let t = NameTable::new(&names);
        assert_eq!(t.get(0), "λ-模型");
        assert_eq!(t.bytes(1), b"x");
    }
}
