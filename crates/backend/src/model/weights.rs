//! Model weights: seeded random fill (counter-based, so it runs on all cores
//! and gives the same bytes on any machine) and safetensors load/save.

use super::layout::{Init, ModelLayout, TensorSpec};
use crate::device::seeded::{mix64, uniform};
use crate::device::{encode, Dtype as Elem};
use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Seed of tensor `index` of a model seeded `seed`.
fn tensor_seed(seed: u64, index: usize) -> u64 {
    mix64(seed.wrapping_mul(1_000_003).wrapping_add(index as u64))
}

const CHUNK: usize = 1 << 22;

/// Fills `buf` (the model's whole buffer) with seeded random weights in the
/// layout's element type (the same values, rounded to it, for every type);
/// bytes no tensor covers are zeroed.
pub fn fill_random(layout: &ModelLayout, seed: u64, buf: &mut [u8]) {
    assert_eq!(buf.len() as u64, layout.total_bytes());
    // Zero what no tensor covers.
    for l in 0..layout.layers() {
        let covered: u64 = layout
            .tensors
            .iter()
            .filter(|t| t.layer == l)
            .map(|t| t.offset + (t.numel() * layout.el()) as u64)
            .max()
            .unwrap_or(0);
        let (start, end) = (layout.layer_offsets[l], layout.layer_offsets[l + 1]);
        buf[(start + covered) as usize..end as usize].fill(0);
    }
    // Work items: (tensor index, first element) chunks.
    let mut items = Vec::new();
    for (ti, t) in layout.tensors.iter().enumerate() {
        let mut e = 0;
        while e < t.numel() {
            items.push((ti, e));
            e += CHUNK;
        }
    }
    let next = AtomicUsize::new(0);
    let base = buf.as_mut_ptr() as usize;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(ti, e0)) = items.get(i) else { break };
                let t = &layout.tensors[ti];
                let n = (t.numel() - e0).min(CHUNK);
                let el = layout.el();
                let off = (layout.layer_offsets[t.layer] + t.offset) as usize + e0 * el;
                // SAFETY: `off + n * el` is within `buf` (the layout's tensors
                // lie inside its total bytes, asserted above) and chunks are
                // disjoint ranges of it, so no two threads write one byte;
                // `buf` outlives the scope.
                let out =
                    unsafe { std::slice::from_raw_parts_mut((base + off) as *mut u8, n * el) };
                fill_tensor_chunk(t, tensor_seed(seed, ti), e0, layout.dtype, out);
            });
        }
    });
}

fn fill_tensor_chunk(t: &TensorSpec, seed: u64, e0: usize, dtype: Elem, out: &mut [u8]) {
    let el = crate::device::el_bytes(dtype);
    for (j, o) in out.chunks_exact_mut(el).enumerate() {
        let u = uniform(seed, (e0 + j) as u64);
        let v = match t.init {
            Init::Uniform(s) => u * s,
            Init::One => 1.0 + 0.05 * u,
        };
        encode(dtype, &[v], o);
    }
}

/// The safetensors type of elements of `dtype`.
fn st_dtype(dtype: Elem) -> Dtype {
    match dtype {
        Elem::Fp16 => Dtype::F16,
        Elem::Fp32 => Dtype::F32,
        Elem::Bf16 => Dtype::BF16,
    }
}

/// Loads every tensor of `layout` from a safetensors file into `buf`;
/// tensors must be of the layout's element type (F16, F32 or BF16) with its
/// shapes. Bytes no tensor covers are zeroed.
pub fn load_safetensors(layout: &ModelLayout, path: &Path, buf: &mut [u8]) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    buf.fill(0);
    for t in &layout.tensors {
        let view = st.tensor(&t.name).with_context(|| {
            format!(
                "{}: tensor `{}` missing (architecture {})",
                path.display(),
                t.name,
                layout.shape.arch
            )
        })?;
        let want = st_dtype(layout.dtype);
        if view.dtype() != want {
            bail!(
                "{}: tensor `{}` is {:?}; expected {want:?} (the model's dtype is {})",
                path.display(),
                t.name,
                view.dtype(),
                layout.dtype.name()
            );
        }
        if view.shape() != t.shape.as_slice() {
            bail!(
                "{}: tensor `{}` has shape {:?}; expected {:?}",
                path.display(),
                t.name,
                view.shape(),
                t.shape
            );
        }
        let off = (layout.layer_offsets[t.layer] + t.offset) as usize;
        buf[off..off + view.data().len()].copy_from_slice(view.data());
    }
    Ok(())
}

/// Writes the tensors of `layout` held in `buf` to a safetensors file.
pub fn save_safetensors(layout: &ModelLayout, buf: &[u8], path: &Path) -> Result<()> {
    let mut views = Vec::new();
    for t in &layout.tensors {
        let off = (layout.layer_offsets[t.layer] + t.offset) as usize;
        let data = &buf[off..off + t.numel() * layout.el()];
        views.push((
            t.name.clone(),
            safetensors::tensor::TensorView::new(st_dtype(layout.dtype), t.shape.clone(), data)?,
        ));
    }
    safetensors::serialize_to_file(views, None, path)
        .with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::model::{Family, ModelShape};

    #[test]
    fn uniform_is_in_range_and_varied() {
        let v: Vec<f32> = (0..10_000).map(|i| uniform(7, i)).collect();
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.05, "{mean}");
        assert_ne!(uniform(7, 0), uniform(8, 0));
    }

    #[test]
    fn safetensors_round_trip_and_errors() {
        let shape = ModelShape::synthetic("syn", 3, 4096, 0.001);
        assert!(matches!(shape.family, Family::Synthetic { .. }));
        let layout = ModelLayout::new(&shape).unwrap();
        let mut a = vec![0u8; layout.total_bytes() as usize];
        fill_random(&layout, 42, &mut a);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syn.safetensors");
        save_safetensors(&layout, &a, &p).unwrap();
        let mut b = vec![1u8; a.len()];
        load_safetensors(&layout, &p, &mut b).unwrap();
        assert_eq!(a, b);
        // A file of another architecture names the missing tensor.
        let other = ModelLayout::new(&ModelShape::synthetic("syn", 4, 4096, 0.001)).unwrap();
        let mut c = vec![0u8; other.total_bytes() as usize];
        let e = load_safetensors(&other, &p, &mut c).unwrap_err();
        assert!(format!("{e:#}").contains("layer.3.weight"), "{e:#}");
    }

    #[test]
    fn fill_is_deterministic() {
        let layout =
            ModelLayout::new(&switchyard_core::arch::builtin("bert-base").unwrap()).unwrap();
        let mut a = vec![0u8; layout.total_bytes() as usize];
        let mut b = vec![0u8; a.len()];
        fill_random(&layout, 1, &mut a);
        fill_random(&layout, 1, &mut b);
        assert!(a == b);
        fill_random(&layout, 2, &mut b);
        assert!(a != b);
    }
}
