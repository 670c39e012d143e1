//! Collectives of tensor-parallel groups through NCCL (loaded at run time
//! from the machine's `libnccl.so`): one communicator per ordered GPU group,
//! made with `ncclCommInitAll` the first time the group is used (aborted on
//! drop), and calls issued on each rank's compute stream inside one NCCL
//! group (a single host thread drives every GPU), which a guard ends even
//! when a call fails midway. NVLink multicast (NVLS) is switched off
//! (`NCCL_NVLS_ENABLE=0`) before the first communicator, as the lent
//! machines require.

use super::*;
use cudarc::nccl::sys as nccl;

/// Whether NCCL (`libnccl.so`) can be loaded here.
pub fn nccl_present() -> bool {
    // SAFETY: only tries to load the library; calls nothing in it.
    unsafe { nccl::is_culib_present() }
}

/// Fails unless `r` is `ncclSuccess`.
fn ckn(r: nccl::ncclResult_t, call: &'static str) -> DeviceResult<()> {
    if r == nccl::ncclResult_t::ncclSuccess {
        Ok(())
    } else {
        Err(DeviceError::Nccl { call, result: r })
    }
}

/// The communicators of one ordered GPU group (one per rank), aborted on
/// drop (`ncclCommAbort` is local to each rank, so a single thread may end
/// them one by one).
pub(super) struct Comms(Vec<nccl::ncclComm_t>);

impl Drop for Comms {
    fn drop(&mut self) {
        for &c in &self.0 {
            // SAFETY: each communicator came from `ncclCommInitAll` and is
            // released only here; the device drained its streams first.
            unsafe { nccl::ncclCommAbort(c) };
        }
    }
}

/// An open NCCL group (`ncclGroupStart`): [`NcclGroup::end`] ends it and
/// reports the result; dropping it unended (a call failed midway) ends it
/// too, so NCCL is never left inside a group.
struct NcclGroup {
    open: bool,
}

impl NcclGroup {
    fn start() -> DeviceResult<NcclGroup> {
        // SAFETY: no arguments; paired with `ncclGroupEnd` by `end` or `Drop`.
        ckn(unsafe { nccl::ncclGroupStart() }, "ncclGroupStart")?;
        Ok(NcclGroup { open: true })
    }

    fn end(mut self) -> DeviceResult<()> {
        self.open = false;
        // SAFETY: closes the group this value opened.
        ckn(unsafe { nccl::ncclGroupEnd() }, "ncclGroupEnd")
    }
}

impl Drop for NcclGroup {
    fn drop(&mut self) {
        if self.open {
            // SAFETY: closes the group this value opened (its calls failed).
            unsafe { nccl::ncclGroupEnd() };
        }
    }
}

impl CudaDevice {
    fn comm(&mut self, gpus: &[usize]) -> DeviceResult<Vec<nccl::ncclComm_t>> {
        if let Some(c) = self.comms.get(gpus) {
            return Ok(c.0.clone());
        }
        if !nccl_present() {
            return Err(DeviceError::Unavailable("tensor parallelism needs NCCL (libnccl.so), which cannot be loaded: add its folder to LD_LIBRARY_PATH".into()));
        }
        for &g in gpus {
            if g >= self.gpus.len() {
                invalid!(
                    "GPU {g} does not exist (this machine has {})",
                    self.gpus.len()
                );
            }
        }
        // The lent machines forbid NVLink multicast; set before any communicator.
        std::env::set_var("NCCL_NVLS_ENABLE", "0");
        let devs: Vec<i32> = gpus.iter().map(|&g| g as i32).collect();
        let mut comms = Comms(vec![std::ptr::null_mut(); gpus.len()]);
        // SAFETY: `comms.0` has room for one communicator per device of
        // `devs`, which lists existing GPUs (checked above).
        let r = unsafe {
            nccl::ncclCommInitAll(comms.0.as_mut_ptr(), devs.len() as i32, devs.as_ptr())
        };
        if r != nccl::ncclResult_t::ncclSuccess {
            // Nothing was made: leave the null handles unreleased.
            std::mem::forget(comms);
            return Err(DeviceError::Nccl {
                call: "ncclCommInitAll",
                result: r,
            });
        }
        self.gpus[self.current].ctx.bind_to_thread()?;
        let raw = comms.0.clone();
        self.comms.insert(gpus.to_vec(), comms);
        Ok(raw)
    }

    fn check_group(
        &self,
        gpus: &[usize],
        bufs: &[DevPtr],
        bytes: u64,
    ) -> DeviceResult<Vec<sys::CUdeviceptr>> {
        if gpus.len() != bufs.len() {
            invalid!("collective: {} GPUs but {} buffers", gpus.len(), bufs.len());
        }
        gpus.iter()
            .zip(bufs)
            .map(|(&g, &b)| Self::ptr(&self.gpus[g], b, bytes))
            .collect()
    }

    /// In-place sum of elements of `dtype` over the group.
    pub(super) fn nccl_all_reduce(
        &mut self,
        gpus: &[usize],
        bufs: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let comms = self.comm(gpus)?;
        let ptrs = self.check_group(gpus, bufs, (n * el_bytes(dtype)) as u64)?;
        let group = NcclGroup::start()?;
        for (r, &g) in gpus.iter().enumerate() {
            let p = ptrs[r] as *mut c_void;
            // SAFETY: `p` holds `n` elements of `dtype` inside GPU `g`'s arena
            // (checked by `check_group`); `comms[r]` is rank `r`'s live
            // communicator (owned by `self.comms`) and the stream is `g`'s.
            let res = unsafe {
                nccl::ncclAllReduce(
                    p,
                    p,
                    n,
                    nccl_type(dtype),
                    nccl::ncclRedOp_t::ncclSum,
                    comms[r],
                    self.gpus[g].compute.cu_stream() as nccl::cudaStream_t,
                )
            };
            ckn(res, "ncclAllReduce")?;
        }
        group.end()
    }

    /// All-gather of elements of `dtype` over the group (rank order).
    pub(super) fn nccl_all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
        dtype: Dtype,
    ) -> DeviceResult<()> {
        let comms = self.comm(gpus)?;
        let el = el_bytes(dtype) as u64;
        let s = self.check_group(gpus, send, n as u64 * el)?;
        let d = self.check_group(gpus, recv, (n * gpus.len()) as u64 * el)?;
        let group = NcclGroup::start()?;
        for (r, &g) in gpus.iter().enumerate() {
            // SAFETY: `s[r]` holds `n` and `d[r]` `n * ranks` elements of `dtype`
            // inside GPU `g`'s arena (checked by `check_group`); `comms[r]`
            // is rank `r`'s live communicator and the stream is `g`'s.
            let res = unsafe {
                nccl::ncclAllGather(
                    s[r] as *const c_void,
                    d[r] as *mut c_void,
                    n,
                    nccl_type(dtype),
                    comms[r],
                    self.gpus[g].compute.cu_stream() as nccl::cudaStream_t,
                )
            };
            ckn(res, "ncclAllGather")?;
        }
        group.end()
    }
}

/// NCCL's name of elements of `dtype`.
fn nccl_type(dtype: Dtype) -> nccl::ncclDataType_t {
    match dtype {
        Dtype::Fp16 => nccl::ncclDataType_t::ncclFloat16,
        Dtype::Fp32 => nccl::ncclDataType_t::ncclFloat32,
        Dtype::Bf16 => nccl::ncclDataType_t::ncclBfloat16,
    }
}
