//! Where the engine runs and in which dtype: `--device auto|cpu|cuda|cuda:N` and `--dtype
//! f32|bf16|f16`. CUDA exists only in builds with the `cuda` feature; asking for it elsewhere is a
//! clear error rather than a silent fallback (only `auto` falls back to the CPU).

use candle_core::{DType, Device};

use crate::{Error, Result};

/// Parse a device spec: `auto` (CUDA device 0 when this build has CUDA and a device answers,
/// otherwise the CPU), `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
pub fn select_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
                if let Ok(device) = Device::new_cuda(0) {
                    return Ok(device);
                }
            }
            Ok(Device::Cpu)
        }
        "cuda" | "gpu" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => cuda(ordinal),
            _ => Err(Error::InvalidInput(format!(
                "unknown device `{spec}`: use auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !cfg!(feature = "cuda") {
        return Err(Error::Unsupported(
            "this build of hone has no CUDA support: rebuild with `cargo build --release --features cuda` \
             (see README), or run on the CPU"
                .into(),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        // candle appends a backtrace to the message when RUST_BACKTRACE is set: keep the cause only.
        let message = e.to_string();
        let cause = message.lines().next().unwrap_or_default();
        Error::Unsupported(format!(
            "CUDA device {ordinal} is not available ({cause}): check the driver with `nvidia-smi`, or run on the CPU"
        ))
    })
}

/// The dtype used when none is asked for: f32 on the CPU (candle's bf16 matmul converts to f32 there
/// anyway), bf16 on GPUs.
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

/// Parse `f32`, `bf16` or `f16` (and their long names).
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" | "float" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" | "half" => Ok(DType::F16),
        other => Err(Error::InvalidInput(format!(
            "unknown dtype `{other}`: use f32, bf16 or f16"
        ))),
    }
}

/// A short human name: `cpu`, `cuda:0`.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// The dtype's usual short name (`f32`, `bf16`, `f16`).
pub fn dtype_name(dtype: DType) -> &'static str {
    dtype.as_str()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_devices_and_dtypes() {
        assert!(select_device("cpu").unwrap().is_cpu());
        assert!(select_device("bogus").is_err());
        assert!(select_device("cuda:x").is_err());
        assert_eq!(parse_dtype("BF16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("float32").unwrap(), DType::F32);
        assert!(parse_dtype("int8").is_err());
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = select_device("cuda").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
        assert!(select_device("auto").unwrap().is_cpu());
    }
}
