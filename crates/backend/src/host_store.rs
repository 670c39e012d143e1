//! Host memory: buffers (pinned through `cuMemHostAlloc`, or pageable) and
//! the store that holds every model's weights for the whole run.
//!
//! All models' weights are allocated once at start, before anything is
//! filled, so a machine short of host memory fails at once with a message
//! naming the model and the bytes, never half-way through a run.

use crate::device::Device;
use crate::model::ModelLayout;
use anyhow::{Context, Result};

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

// The buffer owns its memory; raw pointers are only handed to copy engines.
unsafe impl Send for HostBuffer {}

impl HostBuffer {
    /// A pageable buffer of `len` zero bytes (lazily committed by the OS).
    pub fn heap(len: u64, pinned: bool) -> Result<HostBuffer> {
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(len as usize).with_context(|| {
            format!(
                "host memory is short: cannot allocate {:.2} GiB",
                len as f64 / (1u64 << 30) as f64
            )
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

    /// Start address.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len as usize) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        if let Backing::CudaPinned = self.backing {
            unsafe {
                let _ = cudarc::driver::result::free_host(self.ptr as *mut _);
            }
        }
    }
}

/// One model's weights in host memory.
#[derive(Debug)]
pub struct ModelHost {
    /// Page-locked copy (all systems but stop-and-start).
    pub pinned: Option<HostBuffer>,
    /// Pageable copy (stop-and-start).
    pub pageable: Option<HostBuffer>,
}

impl ModelHost {
    /// The copy to read from.
    pub fn source(&self, pinned: bool) -> Option<&HostBuffer> {
        if pinned {
            self.pinned.as_ref()
        } else {
            self.pageable.as_ref()
        }
    }
}

/// Every model's weights, in host memory for the whole run.
#[derive(Debug, Default)]
pub struct HostStore {
    /// By model index.
    pub models: Vec<ModelHost>,
}

/// How weights are filled.
#[derive(Debug, Clone)]
pub enum WeightSource {
    /// Seeded random: model `i` uses seed `seed + i`.
    Random {
        /// Base seed.
        seed: u64,
    },
    /// A folder of `<model name>.safetensors` (or `<arch>.safetensors`)
    /// files; models without a file are seeded random.
    Safetensors {
        /// The folder.
        dir: std::path::PathBuf,
        /// Seed for models without a file.
        seed: u64,
    },
}

impl HostStore {
    /// Allocates every model's weights (pinned and/or pageable), then fills
    /// them. `names[i]` is model `i`'s name (for files and errors).
    pub fn build(
        dev: &mut dyn Device,
        layouts: &[ModelLayout],
        names: &[String],
        pinned: bool,
        pageable: bool,
        source: &WeightSource,
    ) -> Result<HostStore> {
        let total: u64 = layouts.iter().map(|l| l.total_bytes()).sum();
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let mut models = Vec::with_capacity(layouts.len());
        for (i, layout) in layouts.iter().enumerate() {
            let bytes = layout.total_bytes();
            let alloc = |dev: &mut dyn Device, pin: bool| {
                dev.alloc_host(bytes, pin).with_context(|| {
                    format!(
                        "host memory is short: model `{}` needs {:.2} GiB {} (all {} models: {:.2} GiB each copy kind)",
                        names[i],
                        gib(bytes),
                        if pin { "pinned" } else { "pageable" },
                        layouts.len(),
                        gib(total)
                    )
                })
            };
            let p = if pinned {
                Some(alloc(dev, true)?)
            } else {
                None
            };
            let q = if pageable {
                Some(alloc(dev, false)?)
            } else {
                None
            };
            models.push(ModelHost {
                pinned: p,
                pageable: q,
            });
        }
        for (i, (layout, host)) in layouts.iter().zip(models.iter_mut()).enumerate() {
            let (seed, file) = match source {
                WeightSource::Random { seed } => (seed.wrapping_add(i as u64), None),
                WeightSource::Safetensors { dir, seed } => {
                    let by_name = dir.join(format!("{}.safetensors", names[i]));
                    let by_arch = dir.join(format!("{}.safetensors", layout.shape.arch));
                    let f = [by_name, by_arch].into_iter().find(|p| p.exists());
                    (seed.wrapping_add(i as u64), f)
                }
            };
            let mut first: Option<&mut HostBuffer> = None;
            for buf in [host.pinned.as_mut(), host.pageable.as_mut()]
                .into_iter()
                .flatten()
            {
                match &first {
                    None => {
                        match &file {
                            Some(f) => crate::model::weights::load_safetensors(
                                layout,
                                f,
                                buf.as_mut_slice(),
                            )?,
                            None => {
                                crate::model::weights::fill_random(layout, seed, buf.as_mut_slice())
                            }
                        }
                        first = Some(buf);
                    }
                    Some(src) => buf.as_mut_slice().copy_from_slice(src.as_slice()),
                }
            }
        }
        Ok(HostStore { models })
    }
}
