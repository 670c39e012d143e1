//! The weight pool of one GPU: a fixed region of `capacity` bytes handed out
//! by offset (first fit), so no allocation happens on the switch path and an
//! executor can pre-allocate the pool once.

/// First-fit allocator over `[0, capacity)`.
#[derive(Debug, Clone)]
pub struct Pool {
    capacity: u64,
    /// Free extents `(offset, len)`, sorted by offset, never adjacent.
    free: Vec<(u64, u64)>,
    used: u64,
}

impl Pool {
    /// An empty pool of `capacity` bytes.
    pub fn new(capacity: u64) -> Pool {
        Pool {
            capacity,
            free: if capacity > 0 {
                vec![(0, capacity)]
            } else {
                Vec::new()
            },
            used: 0,
        }
    }

    /// Bytes of the pool.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes handed out.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The lowest offset of a free extent of at least `bytes`, reserved; `None` if none.
    pub fn alloc(&mut self, bytes: u64) -> Option<u64> {
        let i = self.free.iter().position(|&(_, len)| len >= bytes)?;
        let (off, len) = self.free[i];
        if len == bytes {
            self.free.remove(i);
        } else {
            self.free[i] = (off + bytes, len - bytes);
        }
        self.used += bytes;
        Some(off)
    }

    /// Returns `[offset, offset + bytes)` to the pool, merging neighbours.
    pub fn free(&mut self, offset: u64, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let i = self.free.partition_point(|&(o, _)| o < offset);
        debug_assert!(i == 0 || self.free[i - 1].0 + self.free[i - 1].1 <= offset);
        debug_assert!(i == self.free.len() || offset + bytes <= self.free[i].0);
        self.used -= bytes;
        let merge_prev = i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == offset;
        let merge_next = i < self.free.len() && offset + bytes == self.free[i].0;
        match (merge_prev, merge_next) {
            (true, true) => {
                self.free[i - 1].1 += bytes + self.free[i].1;
                self.free.remove(i);
            }
            (true, false) => self.free[i - 1].1 += bytes,
            (false, true) => self.free[i] = (offset, bytes + self.free[i].1),
            (false, false) => self.free.insert(i, (offset, bytes)),
        }
    }

    /// Checks the free list: sorted, disjoint, inside the pool, and
    /// `free + used == capacity`.
    pub fn check(&self) -> Result<(), String> {
        let mut end = 0u64;
        let mut total = 0u64;
        for (k, &(o, l)) in self.free.iter().enumerate() {
            if (k > 0 && o <= end) || l == 0 {
                return Err(format!("free list out of order or empty extent at {o}"));
            }
            end = o + l;
            total += l;
        }
        if end > self.capacity || total + self.used != self.capacity {
            return Err(format!(
                "pool accounting: free {total} + used {} != capacity {}",
                self.used, self.capacity
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_reuses_and_merges() {
        let mut p = Pool::new(100);
        assert_eq!(p.alloc(40), Some(0));
        assert_eq!(p.alloc(40), Some(40));
        assert_eq!(p.alloc(40), None);
        p.free(0, 40);
        assert_eq!(p.alloc(30), Some(0));
        p.free(40, 40);
        p.free(0, 30);
        p.check().unwrap();
        assert_eq!(p.used(), 0);
        assert_eq!(p.alloc(100), Some(0));
        p.check().unwrap();
    }
}
