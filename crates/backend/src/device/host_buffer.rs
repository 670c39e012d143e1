//! Host buffers: memory at one address for its whole life, pinned through
//! `cuMemHostAlloc` (freed in `Drop`) or a plain heap allocation (pageable,
//! and the CPU device's "pinned" too).

use super::error::{DeviceError, DeviceResult};
use switchyard_core::hardware::GIB;

/// Where a buffer's memory came from.
#[derive(Debug)]
enum Backing {
    /// `cuMemHostAlloc` (freed with `cuMemFreeHost`).
    CudaPinned,
    /// A plain heap allocation (pageable; the CPU device's "pinned" too).
    Heap(#[allow(dead_code)] Vec<u8>),
}

/// A host buffer that stays at one address for its whole life.
#[derive(Debug)]
pub struct HostBuffer {
    ptr: *mut u8,
    len: u64,
    pinned: bool,
    backing: Backing,
}

// SAFETY: the buffer owns its memory (nothing else frees or aliases it);
// raw pointers to it are only handed to copy engines, for the buffer's life.
unsafe impl Send for HostBuffer {}

impl HostBuffer {
    /// A pageable buffer of `len` zero bytes (lazily committed by the OS).
    pub fn heap(len: u64, pinned: bool) -> DeviceResult<HostBuffer> {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(len as usize).map_err(|e| {
            DeviceError::OutOfMemory(format!(
                "host memory is short: cannot allocate {:.2} GiB: {e}",
                len as f64 / GIB
            ))
        })?;
        v.resize(len as usize, 0);
        let ptr = v.as_mut_ptr();
        Ok(HostBuffer {
            ptr,
            len,
            pinned,
            backing: Backing::Heap(v),
        })
    }

    /// Wraps memory from `cuMemHostAlloc`.
    ///
    /// # Safety
    /// `ptr` must point to `len` bytes allocated by `cuMemHostAlloc`.
    pub unsafe fn from_cuda_pinned(ptr: *mut u8, len: u64) -> HostBuffer {
        HostBuffer {
            ptr,
            len,
            pinned: true,
            backing: Backing::CudaPinned,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the memory is page-locked.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Whether kernels may read bytes `off..off + bytes` of it in place
    /// (`Device::map_host`): an error unless it is pinned and they lie
    /// inside it.
    pub fn check_mappable(&self, off: u64, bytes: u64) -> DeviceResult<()> {
        if !self.is_pinned() {
            return Err(DeviceError::Invalid(
                "only pinned host memory can be mapped for kernels".into(),
            ));
        }
        if off.checked_add(bytes).is_none_or(|end| end > self.len()) {
            return Err(DeviceError::Invalid(format!(
                "mapping [{off}, +{bytes}) past the end of a {}-byte buffer",
                self.len()
            )));
        }
        Ok(())
    }

    /// Start address.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Start address for a write the host does not see until it is known
    /// to be complete (an asynchronous device-to-host copy, whose event the
    /// host waits for before reading the buffer).
    pub fn as_write_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` points to `len` initialised bytes owned by `self`
        // (zeroed heap memory, or pinned memory filled before it is read).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as `as_slice`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len as usize) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        if let Backing::CudaPinned = self.backing {
            // SAFETY: `ptr` came from `cuMemHostAlloc` (`from_cuda_pinned`)
            // and is freed only here.
            unsafe {
                let _ = cudarc::driver::result::free_host(self.ptr as *mut _);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pinned_ranges_inside_the_buffer_are_mappable() {
        let pinned = HostBuffer::heap(64, true).unwrap();
        assert!(pinned.check_mappable(0, 64).is_ok());
        assert!(pinned.check_mappable(60, 4).is_ok());
        for (off, bytes) in [(60, 5), (65, 0), (1, u64::MAX)] {
            let e = pinned.check_mappable(off, bytes).unwrap_err().to_string();
            assert!(e.contains("past the end of a 64-byte buffer"), "{e}");
        }
        let pageable = HostBuffer::heap(64, false).unwrap();
        let e = pageable.check_mappable(0, 8).unwrap_err().to_string();
        assert!(e.contains("only pinned host memory"), "{e}");
    }
}
