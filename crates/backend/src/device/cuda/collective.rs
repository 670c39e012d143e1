//! Collectives of tensor-parallel groups through NCCL (loaded at run time
//! from the machine's `libnccl.so`): one communicator per ordered GPU group,
//! made with `ncclCommInitAll` the first time the group is used, and calls
//! issued on each rank's compute stream inside one NCCL group (a single
//! host thread drives every GPU). NVLink multicast (NVLS) is switched off
//! (`NCCL_NVLS_ENABLE=0`) before the first communicator, as the lent
//! machines require.

use super::*;

/// Whether NCCL (`libnccl.so`) can be loaded here.
pub fn nccl_present() -> bool {
    unsafe { nccl::is_culib_present() }
}

fn ckn(r: nccl::ncclResult_t, what: &str) -> Result<()> {
    if r == nccl::ncclResult_t::ncclSuccess {
        Ok(())
    } else {
        Err(anyhow!("NCCL {what}: {r:?}"))
    }
}

impl CudaDevice {
    fn comm(&mut self, gpus: &[usize]) -> Result<Vec<nccl::ncclComm_t>> {
        if let Some(c) = self.comms.get(gpus) {
            return Ok(c.clone());
        }
        if !nccl_present() {
            bail!("tensor parallelism needs NCCL (libnccl.so), which cannot be loaded: add its folder to LD_LIBRARY_PATH");
        }
        for &g in gpus {
            if g >= self.gpus.len() {
                bail!(
                    "GPU {g} does not exist (this machine has {})",
                    self.gpus.len()
                );
            }
        }
        // The lent machines forbid NVLink multicast; set before any communicator.
        std::env::set_var("NCCL_NVLS_ENABLE", "0");
        let devs: Vec<i32> = gpus.iter().map(|&g| g as i32).collect();
        let mut comms = vec![std::ptr::null_mut(); gpus.len()];
        unsafe {
            ckn(
                nccl::ncclCommInitAll(comms.as_mut_ptr(), devs.len() as i32, devs.as_ptr()),
                "ncclCommInitAll",
            )?;
        }
        self.gpus[self.current]
            .ctx
            .bind_to_thread()
            .map_err(|e| anyhow!("{e:?}"))?;
        self.comms.insert(gpus.to_vec(), comms.clone());
        Ok(comms)
    }

    fn check_group(&self, gpus: &[usize], bufs: &[DevPtr], bytes: u64) -> Result<Vec<u64>> {
        if gpus.len() != bufs.len() {
            bail!("collective: {} GPUs but {} buffers", gpus.len(), bufs.len());
        }
        gpus.iter()
            .zip(bufs)
            .map(|(&g, &b)| Self::ptr(&self.gpus[g], b, bytes))
            .collect()
    }

    /// In-place fp16 sum over the group.
    pub(super) fn nccl_all_reduce(
        &mut self,
        gpus: &[usize],
        bufs: &[DevPtr],
        n: usize,
    ) -> Result<()> {
        let comms = self.comm(gpus)?;
        let ptrs = self.check_group(gpus, bufs, n as u64 * 2)?;
        unsafe {
            ckn(nccl::ncclGroupStart(), "ncclGroupStart")?;
            for (r, &g) in gpus.iter().enumerate() {
                let p = ptrs[r] as *mut c_void;
                ckn(
                    nccl::ncclAllReduce(
                        p,
                        p,
                        n,
                        nccl::ncclDataType_t::ncclFloat16,
                        nccl::ncclRedOp_t::ncclSum,
                        comms[r],
                        self.gpus[g].compute as nccl::cudaStream_t,
                    ),
                    "ncclAllReduce",
                )?;
            }
            ckn(nccl::ncclGroupEnd(), "ncclGroupEnd")
        }
    }

    /// fp16 all-gather over the group (rank order).
    pub(super) fn nccl_all_gather(
        &mut self,
        gpus: &[usize],
        send: &[DevPtr],
        recv: &[DevPtr],
        n: usize,
    ) -> Result<()> {
        let comms = self.comm(gpus)?;
        let s = self.check_group(gpus, send, n as u64 * 2)?;
        let d = self.check_group(gpus, recv, (n * gpus.len()) as u64 * 2)?;
        unsafe {
            ckn(nccl::ncclGroupStart(), "ncclGroupStart")?;
            for (r, &g) in gpus.iter().enumerate() {
                ckn(
                    nccl::ncclAllGather(
                        s[r] as *const c_void,
                        d[r] as *mut c_void,
                        n,
                        nccl::ncclDataType_t::ncclFloat16,
                        comms[r],
                        self.gpus[g].compute as nccl::cudaStream_t,
                    ),
                    "ncclAllGather",
                )?;
            }
            ckn(nccl::ncclGroupEnd(), "ncclGroupEnd")
        }
    }
}
