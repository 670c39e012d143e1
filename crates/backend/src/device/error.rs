//! The device layer's error: what failed, typed, with cudarc's own errors
//! kept as sources (never flattened to text), as candle's `Error` does it.

use cudarc::cublas::result::CublasError;
use cudarc::driver::DriverError;
use cudarc::nccl::result::NcclError;
use cudarc::nccl::sys::ncclResult_t;
use cudarc::nvrtc::CompileError;

/// A device operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A CUDA driver call failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A cuBLAS call failed.
    #[error(transparent)]
    Cublas(#[from] CublasError),
    /// NVRTC could not compile the kernels.
    #[error(transparent)]
    Nvrtc(#[from] CompileError),
    /// An NCCL call returned something other than success.
    #[error("NCCL {call}: {result:?}")]
    Nccl {
        /// The call, e.g. `ncclAllReduce`.
        call: &'static str,
        /// What it returned.
        result: ncclResult_t,
    },
    /// The device cannot be used here: no driver, no GPU, a library that
    /// cannot be loaded.
    #[error("{0}")]
    Unavailable(String),
    /// Host or device memory is short.
    #[error("{0}")]
    OutOfMemory(String),
    /// An operation the device cannot do as asked: a GPU it does not
    /// have, an access outside an arena, an unknown event or graph, a
    /// capture used wrongly, buffers that do not match.
    #[error("{0}")]
    Invalid(String),
    /// Another error, with what was being done when it happened.
    #[error("{what}")]
    Context {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: Box<DeviceError>,
    },
}

impl From<NcclError> for DeviceError {
    fn from(e: NcclError) -> Self {
        DeviceError::Nccl {
            call: "call",
            result: e.0,
        }
    }
}

/// The device layer's result.
pub type DeviceResult<T> = Result<T, DeviceError>;

/// Adds what was being done to a failed device result.
pub trait Context<T> {
    /// Wraps the error with `what`.
    fn context(self, what: impl Into<String>) -> DeviceResult<T>;
    /// Wraps the error with `what()`, computed only on failure.
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> DeviceResult<T>;
}

impl<T, E: Into<DeviceError>> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> DeviceResult<T> {
        self.map_err(|e| DeviceError::Context {
            what: what.into(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> DeviceResult<T> {
        self.map_err(|e| DeviceError::Context {
            what: what().into(),
            source: Box::new(e.into()),
        })
    }
}

/// Fails with [`DeviceError::Invalid`] built from a format string.
macro_rules! invalid {
    ($($t:tt)*) => {
        return Err($crate::device::error::DeviceError::Invalid(format!($($t)*)))
    };
}
pub(crate) use invalid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_cuda_error_as_its_source() {
        let r: Result<(), DriverError> = Err(DriverError(
            cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY,
        ));
        let e = r.context("host-to-device copy").unwrap_err();
        assert_eq!(e.to_string(), "host-to-device copy");
        assert!(std::error::Error::source(&e).is_some());
        let DeviceError::Context { source, .. } = &e else {
            panic!("{e:?}");
        };
        assert!(matches!(
            **source,
            DeviceError::Driver(DriverError(
                cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY
            ))
        ));
    }

    #[test]
    fn nccl_errors_name_the_call_and_result() {
        let e = DeviceError::Nccl {
            call: "ncclGroupEnd",
            result: ncclResult_t::ncclSystemError,
        };
        assert_eq!(e.to_string(), "NCCL ncclGroupEnd: ncclSystemError");
    }
}
