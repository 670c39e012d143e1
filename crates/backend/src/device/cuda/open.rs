//! Opening the CUDA device: driver, NVRTC and cuBLAS checks, per-GPU
//! contexts, streams, cuBLAS handles and kernels, and peer access.

use super::*;

impl CudaDevice {
    /// Opens every GPU; fails clearly when there is no driver or no GPU.
    pub fn open() -> DeviceResult<CudaDevice> {
        let unavailable = |m: &str| Err(DeviceError::Unavailable(m.into()));
        if !driver_present() {
            return unavailable("no CUDA driver found (libcuda.so cannot be loaded): this machine has no NVIDIA GPU driver; use `--device cpu`");
        }
        let n = CudaContext::device_count().map_err(|e| {
            DeviceError::Unavailable(format!(
                "CUDA driver present but cuInit/cuDeviceGetCount failed: {e}; use `--device cpu`"
            ))
        })?;
        if n < 1 {
            return unavailable("the CUDA driver sees no GPU; use `--device cpu`");
        }
        // SAFETY: only tries to load the library; calls nothing in it.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return unavailable(
                "NVRTC (libnvrtc.so) cannot be loaded: add CUDA's lib64 folder to LD_LIBRARY_PATH",
            );
        }
        // SAFETY: as above.
        if !unsafe { cb::is_culib_present() } {
            return unavailable("cuBLAS (libcublas.so) cannot be loaded: add CUDA's lib64 folder to LD_LIBRARY_PATH");
        }
        let ptx = cudarc::nvrtc::compile_ptx(source::source())
            .context("NVRTC failed to compile the kernels")?;
        let mut gpus = Vec::new();
        let mut names = Vec::new();
        for i in 0..n as usize {
            let ctx = CudaContext::new(i).with_context(|| format!("GPU {i}"))?;
            ctx.bind_to_thread()?;
            names.push(ctx.name().unwrap_or_else(|_| "unknown GPU".into()));
            let compute = ctx.new_stream()?;
            let copy = ctx.new_stream()?;
            let peer = ctx.new_stream()?;
            let offload = ctx.new_stream()?;
            let blas = BlasHandle::new(&compute).context("cuBLAS")?;
            let workspace = DeviceAlloc::new(&ctx, CUBLAS_WORKSPACE as u64)?;
            // SAFETY: the handle is live (owned by `blas`), and the
            // workspace, allocated in this context, outlives it (it is
            // dropped after `blas`: see `Gpu`).
            unsafe {
                cb::cublasSetWorkspace_v2(blas.0, workspace.base as *mut c_void, CUBLAS_WORKSPACE)
            }
            .result()
            .context("cublasSetWorkspace")?;
            let module = ctx
                .load_module(ptx.clone())
                .context("loading the kernels")?;
            let mut funcs = HashMap::new();
            for name in source::NAMES {
                for dtype in Dtype::ALL {
                    let full = source::kernel_name(name, dtype);
                    let f = module
                        .load_function(&full)
                        .with_context(|| format!("kernel {full}"))?;
                    funcs.insert((*name, dtype), f);
                }
            }
            gpus.push(Gpu {
                ctx,
                compute,
                copy,
                peer,
                offload,
                blas,
                _blas_workspace: workspace,
                funcs,
                arena: None,
                mapped: Default::default(),
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
                // SAFETY: `can` is a live out-parameter; both devices are
                // valid handles of open contexts.
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
                gpus[a].ctx.bind_to_thread()?;
                // SAFETY: enables access from the bound context (GPU `a`)
                // to GPU `b`'s live context.
                let r = unsafe { sys::cuCtxEnablePeerAccess(gpus[b].ctx.cu_ctx(), 0) };
                peer[a][b] = matches!(
                    r,
                    sys::CUresult::CUDA_SUCCESS
                        | sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED
                );
            }
        }
        gpus[0].ctx.bind_to_thread()?;
        Ok(CudaDevice {
            graphs: HashMap::new(),
            next_graph: 0,
            capturing: None,
            comms: HashMap::new(),
            events: HashMap::new(),
            next_event: 0,
            gpus,
            current: 0,
            names,
            peer,
        })
    }
}
