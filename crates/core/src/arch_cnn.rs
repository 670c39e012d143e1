//! The PipeSwitch CNNs, ResNet-152 and Inception-v3, with their true layer
//! lists as defined in torchvision.
//!
//! Conventions for every layer below:
//! - `param_bytes` counts learnable parameters only, in fp16: convolution
//!   weights (no conv bias: every conv is followed by a batch norm), the batch
//!   norm's weight and bias, and the fc weight and bias. Batch-norm running
//!   mean/variance are buffers and are NOT counted (as torchvision's parameter
//!   counts do not count them).
//! - `flops_per_item` is 2 x the multiply-accumulates of the convolutions and
//!   the fc for one image, from the real output spatial sizes. Batch norm,
//!   ReLU, pooling and concatenation are elementwise and not counted.

use crate::model::{Family, Layer, LayerKind, ModelShape, DTYPE_BYTES};

/// Spatial size (height, width) of a feature map.
type Hw = (u64, u64);

/// Parameters and multiply-accumulates of one layer being built.
#[derive(Default)]
struct Acc {
    params: u64,
    macs: u64,
}

impl Acc {
    /// A `cin -> cout` convolution of kernel `k`, stride `s` and padding `p`
    /// on an `hw` input, followed by a batch norm; returns the output size.
    fn conv(&mut self, cin: u64, cout: u64, k: Hw, s: u64, p: Hw, hw: Hw) -> Hw {
        let out = (
            (hw.0 + 2 * p.0 - k.0) / s + 1,
            (hw.1 + 2 * p.1 - k.1) / s + 1,
        );
        let weights = cin * cout * k.0 * k.1;
        self.params += weights + 2 * cout;
        self.macs += weights * out.0 * out.1;
        out
    }

    /// A square `k x k` convolution with "same"-style padding `p`.
    fn sq(&mut self, cin: u64, cout: u64, k: u64, s: u64, p: u64, hw: Hw) -> Hw {
        self.conv(cin, cout, (k, k), s, (p, p), hw)
    }

    /// The finished layer.
    fn layer(self, name: String) -> Layer {
        Layer {
            name,
            kind: LayerKind::Conv,
            param_bytes: self.params * DTYPE_BYTES,
            flops_per_item: 2.0 * self.macs as f64,
        }
    }
}

/// Output size of a `k x k` max/avg pool with stride `s` and padding `p`.
fn pool(hw: Hw, k: u64, s: u64, p: u64) -> Hw {
    ((hw.0 + 2 * p - k) / s + 1, (hw.1 + 2 * p - k) / s + 1)
}

/// The final fully connected classifier `cin -> classes`.
fn fc(cin: u64, classes: u64) -> Layer {
    Layer {
        name: "fc".into(),
        kind: LayerKind::Dense,
        param_bytes: (cin * classes + classes) * DTYPE_BYTES,
        flops_per_item: 2.0 * (cin * classes) as f64,
    }
}

fn cnn(name: &str, layers: Vec<Layer>) -> ModelShape {
    ModelShape {
        arch: name.to_string(),
        family: Family::Convolutional,
        items_per_request: 1,
        layers,
    }
}

/// ResNet-152 (torchvision `resnet152`, bottleneck v1.5 with the stride on
/// the 3x3 conv) at 224x224: stem, one layer per bottleneck block, fc.
pub fn resnet152() -> ModelShape {
    let mut layers = Vec::new();
    // Stem: conv1 7x7/2 + bn1, then max pool 3x3/2.
    let mut stem = Acc::default();
    let mut hw = stem.sq(3, 64, 7, 2, 3, (224, 224));
    hw = pool(hw, 3, 2, 1);
    layers.push(stem.layer("stem".into()));
    let mut cin = 64;
    for (stage, (&blocks, &width)) in [3u64, 8, 36, 3]
        .iter()
        .zip(&[64u64, 128, 256, 512])
        .enumerate()
    {
        let cout = 4 * width;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let mut a = Acc::default();
            let h1 = a.sq(cin, width, 1, 1, 0, hw);
            let h2 = a.sq(width, width, 3, stride, 1, h1);
            let h3 = a.sq(width, cout, 1, 1, 0, h2);
            if b == 0 {
                // Downsample: 1x1 conv (strided) + batch norm on the shortcut.
                a.sq(cin, cout, 1, stride, 0, hw);
            }
            hw = h3;
            cin = cout;
            layers.push(a.layer(format!("layer{}.{b}", stage + 1)));
        }
    }
    // Global average pool to 1x1, then fc.
    layers.push(fc(cin, 1000));
    cnn("resnet-152", layers)
}

/// InceptionA (Mixed_5b/5c/5d): spatial size preserved.
fn inception_a(a: &mut Acc, cin: u64, pool_features: u64, hw: Hw) -> (u64, Hw) {
    a.sq(cin, 64, 1, 1, 0, hw);
    let t = a.sq(cin, 48, 1, 1, 0, hw);
    a.sq(48, 64, 5, 1, 2, t);
    let t = a.sq(cin, 64, 1, 1, 0, hw);
    let t = a.sq(64, 96, 3, 1, 1, t);
    a.sq(96, 96, 3, 1, 1, t);
    a.sq(cin, pool_features, 1, 1, 0, pool(hw, 3, 1, 1));
    (64 + 64 + 96 + pool_features, hw)
}

/// InceptionB (Mixed_6a): halves the spatial size.
fn inception_b(a: &mut Acc, cin: u64, hw: Hw) -> (u64, Hw) {
    let out = a.sq(cin, 384, 3, 2, 0, hw);
    let t = a.sq(cin, 64, 1, 1, 0, hw);
    let t = a.sq(64, 96, 3, 1, 1, t);
    a.sq(96, 96, 3, 2, 0, t);
    (384 + 96 + cin, out)
}

/// InceptionC (Mixed_6b..6e) with `c7` channels in its factorized 7x7 branches.
fn inception_c(a: &mut Acc, cin: u64, c7: u64, hw: Hw) -> (u64, Hw) {
    let (r, c) = ((7, 1), (1, 7));
    let (pr, pc) = ((3, 0), (0, 3));
    a.sq(cin, 192, 1, 1, 0, hw);
    let t = a.sq(cin, c7, 1, 1, 0, hw);
    let t = a.conv(c7, c7, c, 1, pc, t);
    a.conv(c7, 192, r, 1, pr, t);
    let t = a.sq(cin, c7, 1, 1, 0, hw);
    let t = a.conv(c7, c7, r, 1, pr, t);
    let t = a.conv(c7, c7, c, 1, pc, t);
    let t = a.conv(c7, c7, r, 1, pr, t);
    a.conv(c7, 192, c, 1, pc, t);
    a.sq(cin, 192, 1, 1, 0, pool(hw, 3, 1, 1));
    (4 * 192, hw)
}

/// InceptionD (Mixed_7a): halves the spatial size.
fn inception_d(a: &mut Acc, cin: u64, hw: Hw) -> (u64, Hw) {
    let t = a.sq(cin, 192, 1, 1, 0, hw);
    let out = a.sq(192, 320, 3, 2, 0, t);
    let t = a.sq(cin, 192, 1, 1, 0, hw);
    let t = a.conv(192, 192, (1, 7), 1, (0, 3), t);
    let t = a.conv(192, 192, (7, 1), 1, (3, 0), t);
    a.sq(192, 192, 3, 2, 0, t);
    (320 + 192 + cin, out)
}

/// InceptionE (Mixed_7b/7c): spatial size preserved.
fn inception_e(a: &mut Acc, cin: u64, hw: Hw) -> (u64, Hw) {
    a.sq(cin, 320, 1, 1, 0, hw);
    let t = a.sq(cin, 384, 1, 1, 0, hw);
    a.conv(384, 384, (1, 3), 1, (0, 1), t);
    a.conv(384, 384, (3, 1), 1, (1, 0), t);
    let t = a.sq(cin, 448, 1, 1, 0, hw);
    let t = a.sq(448, 384, 3, 1, 1, t);
    a.conv(384, 384, (1, 3), 1, (0, 1), t);
    a.conv(384, 384, (3, 1), 1, (1, 0), t);
    a.sq(cin, 192, 1, 1, 0, pool(hw, 3, 1, 1));
    (320 + 2 * 384 + 2 * 384 + 192, hw)
}

/// Inception-v3 (torchvision `inception_v3`, without the auxiliary
/// classifier) at 299x299: one layer per named block, then fc.
pub fn inception_v3() -> ModelShape {
    let mut layers = Vec::new();
    let mut hw: Hw = (299, 299);
    // Stem: (name, cin, cout, kernel, stride, padding, max pool after).
    let stem: [(&str, u64, u64, u64, u64, u64, bool); 5] = [
        ("Conv2d_1a_3x3", 3, 32, 3, 2, 0, false),
        ("Conv2d_2a_3x3", 32, 32, 3, 1, 0, false),
        ("Conv2d_2b_3x3", 32, 64, 3, 1, 1, true),
        ("Conv2d_3b_1x1", 64, 80, 1, 1, 0, false),
        ("Conv2d_4a_3x3", 80, 192, 3, 1, 0, true),
    ];
    for (name, cin, cout, k, s, p, maxpool) in stem {
        let mut a = Acc::default();
        hw = a.sq(cin, cout, k, s, p, hw);
        if maxpool {
            hw = pool(hw, 3, 2, 0);
        }
        layers.push(a.layer(name.into()));
    }
    let mut c = 192;
    let mut block = |name: &str, f: &dyn Fn(&mut Acc, u64, Hw) -> (u64, Hw)| {
        let mut a = Acc::default();
        (c, hw) = f(&mut a, c, hw);
        layers.push(a.layer(name.into()));
    };
    block("Mixed_5b", &|a, c, hw| inception_a(a, c, 32, hw));
    block("Mixed_5c", &|a, c, hw| inception_a(a, c, 64, hw));
    block("Mixed_5d", &|a, c, hw| inception_a(a, c, 64, hw));
    block("Mixed_6a", &inception_b);
    block("Mixed_6b", &|a, c, hw| inception_c(a, c, 128, hw));
    block("Mixed_6c", &|a, c, hw| inception_c(a, c, 160, hw));
    block("Mixed_6d", &|a, c, hw| inception_c(a, c, 160, hw));
    block("Mixed_6e", &|a, c, hw| inception_c(a, c, 192, hw));
    block("Mixed_7a", &inception_d);
    block("Mixed_7b", &inception_e);
    block("Mixed_7c", &inception_e);
    // Global average pool to 1x1, dropout, then fc.
    layers.push(fc(c, 1000));
    cnn("inception-v3", layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet152_exact_parameters_and_shape() {
        let m = resnet152();
        // torchvision resnet152: 60,192,808 parameters.
        assert_eq!(m.params(), 60_192_808);
        assert_eq!(m.layers.len(), 1 + 3 + 8 + 36 + 3 + 1);
        assert_eq!(m.layers.last().unwrap().kind, LayerKind::Dense);
    }

    #[test]
    fn inception_v3_exact_parameters_and_shape() {
        let m = inception_v3();
        // torchvision inception_v3 27,161,264 minus AuxLogits 3,326,696.
        assert_eq!(m.params(), 23_834_568);
        assert_eq!(m.layers.len(), 5 + 11 + 1);
        assert_eq!(m.layers[5].name, "Mixed_5b");
    }

    #[test]
    fn pooling_and_conv_output_sizes() {
        let mut a = Acc::default();
        assert_eq!(a.sq(3, 32, 3, 2, 0, (299, 299)), (149, 149));
        assert_eq!(pool((112, 112), 3, 2, 1), (56, 56));
        assert_eq!(pool((71, 71), 3, 2, 0), (35, 35));
    }
}
