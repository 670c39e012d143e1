//! CUDA C sources of the small kernels, compiled at run time by NVRTC.
//!
//! Each kernel is generated once per element type ([`Dtype`]) from one
//! template: fp16 and bf16 values travel as `unsigned short` and are
//! converted with PTX `cvt` instructions (fp16) or bit shifts with
//! round-to-nearest-even (bf16, as `half::bf16::from_f32` rounds), so no
//! CUDA header is needed; fp32 values are plain `float`s. Arithmetic is f32
//! for every type. The fp16 kernels keep their names (`embed`, ...); the
//! others are suffixed (`embed_f32`, `embed_bf16`: [`kernel_name`]). The
//! formulas match the CPU device's ([`crate::device::cpu`]) and
//! [`crate::device::token_id`] / [`crate::device::seeded::uniform`].

use crate::device::Dtype;

/// Names of the kernels of one element type (fp16's names; see [`kernel_name`]).
pub const NAMES: &[&str] = &[
    "embed",
    "layer_norm",
    "bias_act",
    "add",
    "split_heads",
    "softmax",
    "merge_heads",
    "fill_random",
];

/// Block size used by every kernel.
pub const BLOCK: u32 = 256;

/// Suffix of the kernels of `dtype` (empty for fp16).
pub fn suffix(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Fp16 => "",
        Dtype::Fp32 => "_f32",
        Dtype::Bf16 => "_bf16",
    }
}

/// The name of kernel `name` (one of [`NAMES`]) for elements of `dtype`.
pub fn kernel_name(name: &str, dtype: Dtype) -> String {
    format!("{name}{}", suffix(dtype))
}

/// The whole source: shared helpers, then [`TEMPLATE`] once per element type.
pub fn source() -> String {
    let mut s = String::from(COMMON);
    for d in Dtype::ALL {
        let (t, ld, st) = match d {
            Dtype::Fp16 => ("h16", "h2f", "f2h"),
            Dtype::Fp32 => ("float", "f2f", "f2f"),
            Dtype::Bf16 => ("b16", "b2f", "f2b"),
        };
        s.push_str(
            &TEMPLATE
                .replace("$T", t)
                .replace("$ld", ld)
                .replace("$st", st)
                .replace("$sfx", suffix(d)),
        );
    }
    s
}

/// Types, conversions and block reductions every kernel uses.
pub const COMMON: &str = r#"
typedef unsigned short h16;
typedef unsigned int u32;
typedef unsigned long long u64;

__device__ __forceinline__ float h2f(h16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ h16 f2h(float f) { h16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
typedef unsigned short b16;
__device__ __forceinline__ float b2f(b16 h) { float f; u32 u = ((u32)h) << 16; asm("mov.b32 %0, %1;" : "=f"(f) : "r"(u)); return f; }
__device__ __forceinline__ b16 f2b(float f) {
    u32 u; asm("mov.b32 %0, %1;" : "=r"(u) : "f"(f));
    if ((u & 0x7fffffffu) > 0x7f800000u) return (b16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (b16)(u >> 16);
}
__device__ __forceinline__ float f2f(float f) { return f; }

struct Ids { u32 v[64]; };

__device__ __forceinline__ u32 token_id(u32 req, u32 s, u32 vocab) {
    u32 x = (req * 0x9E3779B1u) ^ (s * 0x85EBCA77u + 0x12345u);
    x ^= x >> 15; x *= 0x2C1B3C6Du; x ^= x >> 12;
    return x % vocab;
}

__device__ __forceinline__ float act_fn(float x, int act) {
    if (act == 1) return fmaxf(x, 0.0f);
    if (act == 2) return 0.5f * x * (1.0f + tanhf(0.7978846f * (x + 0.044715f * x * x * x)));
    if (act == 3) return tanhf(x);
    return x;
}

// Block-wide sum over blockDim.x (a power of two <= 1024) threads.
__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : 0.0f;
    if (w == 0) for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    return sh[0];
}

__device__ float block_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = (threadIdx.x < nw) ? sh[threadIdx.x] : -3.0e38f;
    if (w == 0) for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    return sh[0];
}

__device__ __forceinline__ u64 mix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

"#;

/// The kernels, with `$T` (element type), `$ld`/`$st` (its conversions
/// from and to f32) and `$sfx` (the name suffix) to fill in.
pub const TEMPLATE: &str = r#"
// One block per token.
extern "C" __global__ void embed$sfx($T* out, const $T* tok, const $T* pos, const $T* typ,
                                 Ids ids, int seq, int hidden, int vocab, int pos_offset) {
    int t = blockIdx.x, b = t / seq, s = t % seq;
    u64 id = token_id(ids.v[b], (u32)s, (u32)vocab);
    const $T* tr = tok + id * hidden;
    const $T* pr = pos + (u64)(s + pos_offset) * hidden;
    $T* o = out + (u64)t * hidden;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
        float v = $ld(tr[c]) + $ld(pr[c]);
        if (typ) v += $ld(typ[c]);
        o[c] = $st(v);
    }
}

// One block per row; in place allowed (x == y).
extern "C" __global__ void layer_norm$sfx(const $T* x, $T* y, const $T* g, const $T* b, int cols, float eps) {
    __shared__ float sh[32];
    const $T* xr = x + (u64)blockIdx.x * cols;
    $T* yr = y + (u64)blockIdx.x * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += $ld(xr[c]);
    float mean = block_sum(s, sh) / cols;
    float q = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { float d = $ld(xr[c]) - mean; q += d * d; }
    float inv = rsqrtf(block_sum(q, sh) / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        yr[c] = $st(($ld(xr[c]) - mean) * inv * $ld(g[c]) + $ld(b[c]));
}

extern "C" __global__ void bias_act$sfx($T* y, const $T* bias, u64 rows, int cols, int act) {
    u64 n = rows * (u64)cols;
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
        y[i] = $st(act_fn($ld(y[i]) + $ld(bias[i % cols]), act));
}

extern "C" __global__ void add$sfx($T* x, const $T* y, u64 n) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
        x[i] = $st($ld(x[i]) + $ld(y[i]));
}

// Over every element of q: (b, head j, s, d) <- qkv[t, w*hid + j*dh + d].
extern "C" __global__ void split_heads$sfx(const $T* qkv, $T* q, $T* k, $T* v, int B, int S, int H, int dh) {
    u64 hid = (u64)H * dh, n = (u64)B * S * hid;
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u64 t = i / hid, r = i % hid;
        u64 b = t / S, s = t % S, j = r / dh, d = r % dh;
        u64 dst = ((b * H + j) * S + s) * dh + d;
        const $T* src = qkv + t * 3 * hid + r;
        q[dst] = src[0]; k[dst] = src[hid]; v[dst] = src[2 * hid];
    }
}

// One block per score row (query i = row % S).
extern "C" __global__ void softmax$sfx(const float* sc, $T* p, int S, int causal, float scale) {
    __shared__ float sh[32];
    u64 r = blockIdx.x;
    int i = (int)(r % S), lim = causal ? i + 1 : S;
    const float* row = sc + r * S;
    $T* pr = p + r * S;
    float m = -3.0e38f;
    for (int j = threadIdx.x; j < lim; j += blockDim.x) m = fmaxf(m, row[j] * scale);
    m = block_max(m, sh);
    float s = 0.0f;
    for (int j = threadIdx.x; j < lim; j += blockDim.x) s += __expf(row[j] * scale - m);
    float inv = 1.0f / block_sum(s, sh);
    for (int j = threadIdx.x; j < S; j += blockDim.x)
        pr[j] = $st(j < lim ? __expf(row[j] * scale - m) * inv : 0.0f);
}

extern "C" __global__ void merge_heads$sfx(const $T* o, $T* out, int B, int S, int H, int dh) {
    u64 hid = (u64)H * dh, n = (u64)B * S * hid;
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u64 t = i / hid, r = i % hid;
        u64 b = t / S, s = t % S, j = r / dh, d = r % dh;
        out[i] = o[((b * H + j) * S + s) * dh + d];
    }
}

extern "C" __global__ void fill_random$sfx($T* dst, u64 n, u64 seed, float scale) {
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u64 r = mix64(seed ^ (i * 0xD6E8FEB86659FD93ull));
        float u = (float)(r >> 40) * (1.0f / 8388608.0f) - 1.0f;
        dst[i] = $st(u * scale);
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel is generated once per type, under the name the device
    /// loads, with nothing of the template left unfilled; the fp16 kernels
    /// keep their names and `h16` signatures.
    #[test]
    fn every_kernel_is_generated_for_every_type() {
        let s = source();
        assert!(!s.contains('$'), "an unfilled template field");
        for name in NAMES {
            for d in Dtype::ALL {
                let decl = format!("extern \"C\" __global__ void {}(", kernel_name(name, d));
                assert_eq!(s.matches(&decl).count(), 1, "{decl}");
            }
        }
        assert!(s.contains("extern \"C\" __global__ void add(h16* x, const h16* y, u64 n)"));
        assert!(s.contains("extern \"C\" __global__ void add_f32(float* x, const float* y, u64 n)"));
        assert!(s.contains("extern \"C\" __global__ void add_bf16(b16* x, const b16* y, u64 n)"));
        // Braces balance (a cut in the template would not).
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    /// The bf16 conversion the kernels use (round to nearest even, NaN kept
    /// quiet), written here in Rust bit for bit, agrees with `half`'s,
    /// which the CPU device and the weights use.
    #[test]
    fn bf16_rounding_matches_half() {
        let f2b = |f: f32| -> u16 {
            let mut u = f.to_bits();
            if (u & 0x7fff_ffff) > 0x7f80_0000 {
                return ((u >> 16) | 0x40) as u16;
            }
            u = u.wrapping_add(0x7fff + ((u >> 16) & 1));
            (u >> 16) as u16
        };
        let mut x = 0x9E37_79B9u32;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(if i % 2 == 0 { x } else { x & 0x3fff_ffff });
            let want = half::bf16::from_f32(f).to_bits();
            assert!(
                f2b(f) == want || f.is_nan() && f2b(f) & 0x7fc0 == 0x7fc0,
                "{f:e}: {:#x} vs {want:#x}",
                f2b(f)
            );
        }
    }

    /// Declarations standing in for CUDA's, so a host C++ compiler can check
    /// the kernels' syntax and types (the inline PTX is dropped).
    const HOST_SHIM: &str = "#define __global__\n#define __device__\n\
        #define __forceinline__ inline\n#define __shared__ static\n#define asm(...) ((void)0)\n\
        struct dim3_ { unsigned x, y, z; };\nextern dim3_ threadIdx, blockIdx, blockDim, gridDim;\n\
        float __shfl_xor_sync(unsigned, float, int);\nfloat fmaxf(float, float);\n\
        float tanhf(float);\nfloat rsqrtf(float);\nfloat __expf(float);\nvoid __syncthreads();\n";

    /// The whole source, every type, compiles as C++ (`g++ -fsyntax-only`
    /// with [`HOST_SHIM`]): NVRTC, which only a GPU machine has, is not the
    /// first to see a typo. Skipped, saying so, without `g++`.
    #[test]
    fn the_source_is_valid_cpp_for_every_type() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kernels.cpp");
        std::fs::write(&file, format!("{HOST_SHIM}{}", source())).unwrap();
        let out = match std::process::Command::new("g++")
            .args(["-std=c++17", "-fsyntax-only", "-Wall", "-Wno-sign-compare"])
            // The dropped PTX leaves values unread or unset: not the kernels' fault.
            .args([
                "-Wno-unused-variable",
                "-Wno-uninitialized",
                "-Wno-maybe-uninitialized",
            ])
            .arg(&file)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                println!("skipped: no g++ to check the CUDA C with ({e})");
                return;
            }
        };
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
