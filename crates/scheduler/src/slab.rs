//! A slab of reusable slots: ids are small integers, freed slots are reused
//! (their buffers keep their capacity, so the hot path does not allocate).

/// Slots of `T` addressed by `u32`.
#[derive(Debug, Default)]
pub(crate) struct Slab<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T: Default> Slab<T> {
    /// A free slot (contents left as they were: callers reset what they use).
    pub(crate) fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.items.push(T::default());
                (self.items.len() - 1) as u32
            }
        }
    }

    /// Returns slot `id` for reuse.
    pub(crate) fn release(&mut self, id: u32) {
        self.free.push(id);
    }

    /// Slot `id`.
    pub(crate) fn get(&self, id: u32) -> &T {
        &self.items[id as usize]
    }

    /// Slot `id`, mutably.
    pub(crate) fn get_mut(&mut self, id: u32) -> &mut T {
        &mut self.items[id as usize]
    }

    /// Slots in use.
    pub(crate) fn live(&self) -> usize {
        self.items.len() - self.free.len()
    }
}
