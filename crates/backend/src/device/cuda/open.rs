//! Opening the CUDA device: driver, NVRTC and cuBLAS checks, per-GPU
//! contexts, streams, cuBLAS handles and kernels, and peer access.

use super::*;

impl CudaDevice {
    /// Opens every GPU; fails clearly when there is no driver or no GPU.
    pub fn open() -> Result<CudaDevice> {
        if !driver_present() {
            bail!("no CUDA driver found (libcuda.so cannot be loaded): this machine has no NVIDIA GPU driver; use `--device cpu`");
        }
        let n = CudaContext::device_count().map_err(|e| {
            anyhow!(
                "CUDA driver present but cuInit/cuDeviceGetCount failed: {e:?}; use `--device cpu`"
            )
        })?;
        if n < 1 {
            bail!("the CUDA driver sees no GPU; use `--device cpu`");
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            bail!(
                "NVRTC (libnvrtc.so) cannot be loaded: add CUDA's lib64 folder to LD_LIBRARY_PATH"
            );
        }
        if !unsafe { cb::is_culib_present() } {
            bail!("cuBLAS (libcublas.so) cannot be loaded: add CUDA's lib64 folder to LD_LIBRARY_PATH");
        }
        let ptx = cudarc::nvrtc::compile_ptx(super::source::SOURCE)
            .map_err(|e| anyhow!("NVRTC failed to compile the kernels: {e:?}"))?;
        let ptx = CString::new(ptx.to_src()).unwrap();
        let mut gpus = Vec::new();
        let mut names = Vec::new();
        for i in 0..n as usize {
            let ctx = CudaContext::new(i).map_err(|e| anyhow!("GPU {i}: {e:?}"))?;
            ctx.bind_to_thread().map_err(|e| anyhow!("{e:?}"))?;
            names.push(ctx.name().unwrap_or_else(|_| "unknown GPU".into()));
            let compute = dr::stream::create(dr::stream::StreamKind::NonBlocking)
                .map_err(|e| anyhow!("{e:?}"))?;
            let copy = dr::stream::create(dr::stream::StreamKind::NonBlocking)
                .map_err(|e| anyhow!("{e:?}"))?;
            let blas =
                cudarc::cublas::result::create_handle().map_err(|e| anyhow!("cuBLAS: {e:?}"))?;
            let ws = unsafe { dr::malloc_sync(CUBLAS_WORKSPACE) }.map_err(|e| anyhow!("{e:?}"))?;
            unsafe {
                ckb(
                    cb::cublasSetStream_v2(blas, compute as _),
                    "cublasSetStream",
                )?;
                ckb(
                    cb::cublasSetWorkspace_v2(blas, ws as *mut c_void, CUBLAS_WORKSPACE),
                    "cublasSetWorkspace",
                )?;
            }
            let module = unsafe { dr::module::load_data(ptx.as_ptr() as *const c_void) }
                .map_err(|e| anyhow!("loading the kernels: {e:?}"))?;
            let mut funcs = HashMap::new();
            for name in super::source::NAMES {
                let f = unsafe { dr::module::get_function(module, CString::new(*name).unwrap()) }
                    .map_err(|e| anyhow!("kernel {name}: {e:?}"))?;
                funcs.insert(*name, f);
            }
            gpus.push(Gpu {
                ctx,
                compute,
                copy,
                blas,
                funcs,
                base: 0,
                arena: 0,
                free_events: Vec::new(),
            });
        }
        // Peer access between every pair that supports it (NVLink / PCIe
        // peer copies); the others hand activations over through the host.
        let mut peer = vec![vec![false; gpus.len()]; gpus.len()];
        for a in 0..gpus.len() {
            for b in 0..gpus.len() {
                if a == b {
                    peer[a][b] = true;
                    continue;
                }
                let mut can = 0i32;
                let r = unsafe {
                    sys::cuDeviceCanAccessPeer(
                        &mut can,
                        gpus[a].ctx.cu_device(),
                        gpus[b].ctx.cu_device(),
                    )
                };
                if r != sys::CUresult::CUDA_SUCCESS || can == 0 {
                    continue;
                }
                gpus[a].ctx.bind_to_thread().map_err(|e| anyhow!("{e:?}"))?;
                let r = unsafe { sys::cuCtxEnablePeerAccess(gpus[b].ctx.cu_ctx(), 0) };
                peer[a][b] = matches!(
                    r,
                    sys::CUresult::CUDA_SUCCESS
                        | sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED
                );
            }
        }
        gpus[0].ctx.bind_to_thread().map_err(|e| anyhow!("{e:?}"))?;
        Ok(CudaDevice {
            gpus,
            events: HashMap::new(),
            next_event: 0,
            current: 0,
            names,
            peer,
            comms: HashMap::new(),
            graphs: HashMap::new(),
            next_graph: 0,
            capturing: None,
        })
    }
}
