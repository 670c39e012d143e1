//! What the GPU tests share.

use switchyard_backend::device::cuda::{self, CudaDevice};

/// The CUDA device, or `None` after saying why the test is skipped (no
/// driver, or no usable GPU), so the suite passes on machines without one.
pub fn cuda_or_skip() -> Option<CudaDevice> {
    if !cuda::driver_present() {
        println!("skipped: no CUDA driver on this machine");
        return None;
    }
    match CudaDevice::open() {
        Ok(d) => Some(d),
        Err(e) => {
            println!("skipped: {e:#}");
            None
        }
    }
}
