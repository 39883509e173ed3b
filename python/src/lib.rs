//! The `augloader._augloader` extension module: the loading core for Python. The Python package
//! (`python/augloader/__init__.py`) wraps it into `augloader.Loader` and `augloader.augment`.
//!
//! Batches leave Rust without a copy: each array is a [`Buffer`] that owns its memory and
//! exposes numpy's `__array_interface__`. The GIL is released while Rust waits for a batch or
//! augments; waiting wakes every 100 ms to let Ctrl-C through.

mod sources;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use augloader::augment_encoded;
use augloader::decode::DecodeOptions;
use augloader::rng::sample_rng;
use augloader::source::{Source, Split};
use augloader::transform::Normalize;
use augloader::transform::{Params, Pipeline, PipelineOverrides, Resize, PRESETS};
use augloader::tta::{TtaConfig, TtaMode, TTA_MODES};
use augloader::EpochIter;
use augloader::Pooled;
use augloader::{Batch, BatchData, Dtype, ErrorPolicy, Layout, Loader};
use pyo3::exceptions::{PyException, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyTuple};

pyo3::create_exception!(
    _augloader,
    LoadError,
    PyException,
    "An image or dataset could not be loaded; the message names the file."
);

fn load_err(e: impl std::fmt::Display) -> PyErr {
    LoadError::new_err(e.to_string())
}

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Memory handed to numpy: owned here, viewed there through `__array_interface__`.
enum Data {
    /// A batch's buffer goes back to its loader's pool when Python frees the array.
    U8(Pooled<u8>),
    /// Batches collated to normalised float32 in the workers.
    F32(Pooled<f32>),
    I64(Vec<i64>),
}

/// An array's memory and shape; `numpy.asarray(buffer)` views it without a copy and keeps the
/// buffer alive.
#[pyclass(frozen, module = "augloader._augloader")]
struct Buffer {
    data: Data,
    shape: Vec<usize>,
}

#[pymethods]
impl Buffer {
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (ptr, typestr) = match &self.data {
            Data::U8(v) => (v.as_ptr() as usize, "|u1"),
            Data::F32(v) => (v.as_ptr() as usize, "<f4"),
            Data::I64(v) => (v.as_ptr() as usize, "<i8"),
        };
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.shape)?)?;
        d.set_item("typestr", typestr)?;
        // Writable, as torch.from_numpy wants: the memory is Python's to use from here on;
        // Rust never reads it again.
        d.set_item("data", (ptr, false))?;
        Ok(d)
    }
}

fn buffer_u8(data: Pooled<u8>, shape: Vec<usize>) -> Buffer {
    Buffer {
        data: Data::U8(data),
        shape,
    }
}

fn buffer_i64(data: Vec<i64>) -> Buffer {
    let shape = vec![data.len()];
    Buffer {
        data: Data::I64(data),
        shape,
    }
}

/// The preset `name` with `overrides` (the command line's pipeline flags) applied: the keywords
/// are deserialised into the library's one list of them, which names the unknown ones.
fn build_pipeline(
    name: &str,
    overrides: &Bound<'_, PyDict>,
) -> PyResult<(Pipeline, DecodeOptions)> {
    let mut fields = serde_json::Map::new();
    for (k, v) in overrides.iter() {
        let key: String = k.extract()?;
        let value = if let Ok(b) = v.downcast::<PyBool>() {
            serde_json::Value::from(b.is_true())
        } else if let Ok(i) = v.extract::<i64>() {
            serde_json::Value::from(i)
        } else if let Ok(f) = v.extract::<f64>() {
            serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .ok_or_else(|| value_err(format!("{key}={f} must be finite")))?
        } else if let Ok(s) = v.extract::<String>() {
            serde_json::Value::from(s)
        } else {
            return Err(value_err(format!(
                "{key}={v}: expected a number, a bool or a string"
            )));
        };
        // One at a time, so that the error names the keyword and says its range.
        let one = serde_json::Map::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = serde_json::from_value::<PipelineOverrides>(one.into()) {
            return Err(value_err(format!(
                "{key}={value}: {}",
                expected(&e.to_string())
            )));
        }
        fields.insert(key, value);
    }
    let o: PipelineOverrides = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| value_err(format!("pipeline override: {e}")))?;
    let p = Pipeline::preset(name).map_err(value_err)?;
    let decode = o.decode_options(DecodeOptions::default());
    Ok((o.apply(p).map_err(value_err)?, decode))
}

/// A deserialisation error of one override, said as the range it must be in.
fn expected(serde_message: &str) -> String {
    let ranges = [
        ("expected u8", "must be an integer in 0..=255"),
        ("expected u16", "must be an integer in 0..=65535"),
        ("expected u32", "must be an integer in 0..=4294967295"),
        ("expected f32", "must be a finite number"),
        ("expected a boolean", "must be True or False"),
        ("expected a string", "must be a string"),
    ];
    ranges
        .iter()
        .find(|(k, _)| serde_message.contains(k))
        .map_or_else(|| serde_message.to_string(), |(_, v)| v.to_string())
}

/// The names of the pipeline overrides (`PipelineOverrides::names`).
#[pyfunction]
fn override_names() -> Vec<String> {
    PipelineOverrides::names()
}

/// The Python `transform=` callable as a user op: `runner(func, image, seed)` (the package's
/// `_run_transform`) is called with the GIL held for the call only, in the worker that makes the
/// sample; the seed comes from the sample's RNG, so the callable's torch randomness is a
/// function of (seed, epoch, index) too.
struct PyTransform {
    func: Py<PyAny>,
    runner: Py<PyAny>,
}

impl augloader::transform::Op for PyTransform {
    fn name(&self) -> &str {
        "transform"
    }

    fn sample(
        &self,
        rng: &mut augloader::rng::SampleRng,
        _width: u32,
        _height: u32,
    ) -> serde_json::Value {
        use rand::Rng;
        // 53 bits: exact in JSON numbers and Python floats alike.
        serde_json::json!({ "seed": rng.random::<u64>() >> 11 })
    }

    fn apply(&self, img: image::RgbImage, params: &serde_json::Value) -> image::RgbImage {
        let seed = params["seed"].as_u64().unwrap_or(0);
        let shape = vec![img.height() as usize, img.width() as usize, 3];
        let buf = buffer_u8(img.into_raw().into(), shape);
        let out: PyResult<(Vec<u8>, u32, u32)> = Python::with_gil(|py| {
            let r = self
                .runner
                .call1(py, (self.func.clone_ref(py), buf, seed))?;
            r.extract(py)
        });
        match out {
            Ok((data, h, w)) => match image::RgbImage::from_raw(w, h, data) {
                Some(img) => img,
                None => panic!("transform= returned bytes that do not match {h}x{w}x3"),
            },
            // The loader turns the panic into an error that names the batch.
            Err(e) => panic!("transform= raised: {e}"),
        }
    }
}

/// A configured loader over one split of a dataset.
#[pyclass(frozen, name = "Loader", module = "augloader._augloader")]
struct PyLoader {
    loader: Arc<Loader>,
    fingerprint: String,
    /// The preset's normalisation (the collation may use other statistics).
    normalize: Normalize,
}

#[pymethods]
impl PyLoader {
    #[new]
    #[pyo3(signature = (data, split, pipeline, overrides, batch_size, workers, prefetch, seed, shuffle, drop_last, even, pad_tail, rank, world_size, skip_errors, tta, channels_last, float32, stats, mix=None, transform=None, exclude=None, remote=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        data: sources::DataArg<'_>,
        split: &str,
        pipeline: &str,
        overrides: &Bound<'_, PyDict>,
        batch_size: usize,
        workers: usize,
        prefetch: usize,
        seed: u64,
        shuffle: bool,
        drop_last: bool,
        even: bool,
        pad_tail: bool,
        rank: usize,
        world_size: usize,
        skip_errors: bool,
        tta: Option<&str>,
        channels_last: bool,
        float32: bool,
        stats: Option<([f32; 3], [f32; 3])>,
        mix: Option<(Option<f64>, Option<f64>, f64, f64)>,
        transform: Option<(Py<PyAny>, Py<PyAny>)>,
        exclude: Option<std::path::PathBuf>,
        remote: Option<sources::RemoteArgs>,
    ) -> PyResult<Self> {
        let (mut pipeline, decode) = build_pipeline(pipeline, overrides)?;
        if let Some((func, runner)) = transform {
            pipeline = pipeline.with_op(PyTransform { func, runner });
        }
        let preset = pipeline.normalize;
        // float32 batches: the workers collate (x / 255 - mean) / std with `stats` (default:
        // the pipeline's).
        if let Some((mean, std)) = stats {
            let n = Normalize { mean, std };
            n.validate()
                .map_err(|e| value_err(format!("normalize: {e}")))?;
            pipeline.normalize = n;
        }
        let dtype = if float32 { Dtype::F32 } else { Dtype::U8 };
        let tta = tta_config(tta, &pipeline)?;
        let split = if split == "train" {
            Split::Train
        } else {
            Split::Val
        };
        let source = sources::open(data, split, exclude, remote.as_ref())?;
        let fingerprint = augloader::source::fingerprint(source.as_ref());
        let mut builder = Loader::builder(source, pipeline);
        if let Some(w) = remote.as_ref().map(|r| r.0).filter(|w| *w > 0) {
            builder = builder.shuffle_window(w);
        }
        if let Some(cfg) = tta {
            builder = builder.per_sample(cfg);
        }
        if let Some((mixup, cutmix, switch_prob, label_smoothing)) = mix {
            builder = builder.mix(augloader::transform::Mix {
                mixup,
                cutmix,
                switch_prob,
                label_smoothing,
            });
        }
        let loader = builder
            .batch_size(batch_size)
            .workers(workers)
            .prefetch(prefetch)
            .seed(seed)
            .shuffle(shuffle)
            .drop_last(drop_last)
            .even_shards(even)
            .pad_tail(pad_tail)
            .shard(rank, world_size)
            .dtype(dtype)
            .on_error(if skip_errors {
                ErrorPolicy::Skip
            } else {
                ErrorPolicy::Fail
            })
            .decode_options(decode)
            .layout(if channels_last {
                Layout::Nhwc
            } else {
                Layout::Nchw
            })
            .build()
            .map_err(value_err)?;
        Ok(PyLoader {
            loader: Arc::new(loader),
            fingerprint,
            normalize: preset,
        })
    }

    fn batches_per_epoch(&self) -> usize {
        self.loader.batches_per_epoch()
    }

    /// ("class" | "multilabel" | "regression", width of the float target rows).
    fn target_kind(&self) -> (&'static str, usize) {
        sources::kind_of(self.loader.source().as_ref())
    }

    /// Samples per epoch on this rank (Rust's `Loader::samples_per_epoch`).
    fn samples_per_epoch(&self) -> usize {
        self.loader.samples_per_epoch()
    }

    /// The dataset indices of this rank's batches in `epoch`.
    fn indices(&self, epoch: u64) -> Vec<usize> {
        self.loader.indices(epoch)
    }

    /// Sample `index` of `epoch` as the loader makes it: its image(s), HWC.
    fn sample(&self, py: Python<'_>, epoch: u64, index: usize) -> PyResult<(Vec<Buffer>, usize)> {
        let loader = self.loader.clone();
        let images = py
            .allow_threads(|| loader.sample(epoch, index))
            .map_err(|e| match e {
                augloader::LoadError::Config(m) => pyo3::exceptions::PyIndexError::new_err(m),
                e => load_err(e),
            })?;
        let label = self.loader.source().label(index);
        let images = images
            .into_iter()
            .map(|img| {
                let shape = vec![img.height() as usize, img.width() as usize, 3];
                buffer_u8(img.into_raw().into(), shape)
            })
            .collect();
        Ok((images, label))
    }

    fn dataset_len(&self) -> usize {
        self.loader.source().len()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn classes(&self) -> Vec<String> {
        self.loader.source().classes().to_vec()
    }

    fn samples(&self) -> Vec<(String, usize)> {
        let s = self.loader.source();
        (0..s.len()).map(|i| (s.name(i), s.label(i))).collect()
    }

    fn mean(&self) -> [f32; 3] {
        self.normalize.mean
    }

    fn std(&self) -> [f32; 3] {
        self.normalize.std
    }

    /// The batches of `epoch` from global position `position` (samples of the epoch's order
    /// already delivered over all ranks) on.
    fn epoch(&self, epoch: u64, position: usize) -> PyEpoch {
        let it = self.loader.epoch_at(epoch, position);
        PyEpoch {
            total: it.total_batches(),
            iter: Mutex::new(Some(it)),
            position: Mutex::new(position),
            closing: AtomicBool::new(false),
            pid: std::process::id(),
        }
    }
}

/// One epoch's batches in order. `close()` (or dropping it) stops and joins the workers.
#[pyclass(frozen, name = "Epoch", module = "augloader._augloader")]
struct PyEpoch {
    iter: Mutex<Option<EpochIter>>,
    position: Mutex<usize>,
    /// Set by `close()`: a thread waiting in `next_batch` stops at its next wake-up.
    closing: AtomicBool,
    /// The process whose threads are the workers (a forked child has none of them).
    pid: u32,
    total: usize,
}

impl PyEpoch {
    /// The iterator's lock, waited for without the GIL (its holder may need the GIL to finish).
    fn lock<'a>(&'a self, py: Python<'_>) -> MutexGuard<'a, Option<EpochIter>> {
        loop {
            match self.iter.try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    py.allow_threads(|| std::thread::sleep(Duration::from_millis(1)));
                }
            }
        }
    }
}

type Item = (
    Buffer,
    Buffer,
    Buffer,
    Vec<(usize, String, String)>,
    Option<Buffer>,
);

fn batch_item(b: Batch) -> PyResult<Item> {
    // The shape in memory: [B, 3, H, W], or [B, V, 3, H, W] for TTA views; NHWC batches end in
    // [H, W, 3] instead (Python permutes them to the logical shape).
    let Some(shape) = b.shape() else {
        return Err(value_err(unequal_sizes(&b)));
    };
    let mut shape = shape.to_vec();
    if b.layout == Layout::Nhwc && !shape.is_empty() {
        let c = shape.remove(1);
        shape.push(c);
    }
    let views = b.views();
    if views > 1 && !shape.is_empty() {
        shape[0] = b.len();
        shape.insert(1, views);
    }
    let skipped = b
        .skipped
        .iter()
        .map(|s| (s.index, s.name.clone(), s.reason.clone()))
        .collect();
    let indices = b.indices.iter().map(|&i| i as i64).collect();
    let targets = b.targets.map(|t| Buffer {
        shape: vec![b.labels.len(), b.classes],
        data: Data::F32(t.into()),
    });
    let images = match b.data {
        BatchData::U8(data) => Buffer {
            data: Data::U8(data),
            shape,
        },
        BatchData::F32(data) => Buffer {
            data: Data::F32(data),
            shape,
        },
    };
    Ok((
        images,
        buffer_i64(b.labels),
        buffer_i64(indices),
        skipped,
        targets,
    ))
}

/// Why a batch of images of different sizes cannot be one array, naming the sizes.
fn unequal_sizes(b: &Batch) -> String {
    let mut sizes: Vec<String> = Vec::new();
    for (h, w) in &b.sizes {
        let s = format!("{h}x{w}");
        if !sizes.contains(&s) {
            sizes.push(s);
        }
    }
    let shown = sizes.len().min(8);
    format!(
        "the images of a batch (dataset indices {:?}) have different sizes (HxW: {}{}), so they \
         cannot be stacked into one tensor: use a pipeline with a fixed output size (a crop or \
         `size=`), or batch_size=1 with pipeline=\"decode\"",
        &b.indices[..b.indices.len().min(8)],
        sizes[..shown].join(", "),
        if sizes.len() > shown { ", ..." } else { "" }
    )
}

#[pymethods]
impl PyEpoch {
    /// The next batch as (images, labels, indices, skipped), or None at the end.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<Item>> {
        if self.pid != std::process::id() {
            return Err(PyRuntimeError::new_err(
                "this pass over the loader was started before os.fork(): its worker threads are \
                 in the parent; start a new iteration (iter(loader)) in the child",
            ));
        }
        let mut guard = self.lock(py);
        let Some(it) = guard.as_mut() else {
            return Ok(None);
        };
        loop {
            if self.closing.load(Ordering::Acquire) {
                let it = guard.take();
                py.allow_threads(|| drop(it));
                return Ok(None);
            }
            let polled = py.allow_threads(|| it.next_timeout(Duration::from_millis(100)));
            match polled {
                Ok(Some(Ok(b))) => {
                    *self.position.lock().expect("not poisoned") = it.global_position();
                    return batch_item(b).map(Some);
                }
                Ok(Some(Err(e))) => {
                    *guard = None;
                    return Err(load_err(e));
                }
                Ok(None) => {
                    *guard = None;
                    return Ok(None);
                }
                Err(_timeout) => {
                    if let Err(e) = py.check_signals() {
                        // Ctrl-C: stop and join the workers before the exception propagates.
                        let it = guard.take();
                        py.allow_threads(|| drop(it));
                        return Err(e);
                    }
                }
            }
        }
    }

    /// The epoch's global position after the batches delivered so far.
    fn position(&self) -> usize {
        *self.position.lock().expect("not poisoned")
    }

    /// Whether `close()` was called (a pass that ended so did not complete its epoch).
    fn was_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Batches of this pass in all.
    fn total(&self) -> usize {
        self.total
    }

    /// Stops and joins the workers (also while another thread waits in `next_batch`: it then
    /// returns None).
    fn close(&self, py: Python<'_>) {
        self.closing.store(true, Ordering::Release);
        if self.pid != std::process::id() {
            // A forked child: the workers are not here; forget the iterator without joining.
            std::mem::forget(self.lock(py).take());
            return;
        }
        let it = self.lock(py).take();
        py.allow_threads(|| drop(it));
    }
}

/// Augments the encoded image in `path` as sample `index` of `epoch` under `seed`.
#[pyfunction]
fn augment_file(
    py: Python<'_>,
    path: &str,
    pipeline: &str,
    overrides: &Bound<'_, PyDict>,
    seed: u64,
    epoch: u64,
    index: u64,
) -> PyResult<(Buffer, String)> {
    let (p, decode) = build_pipeline(pipeline, overrides)?;
    // Through the file gate, without the GIL: a slow disk or a refused FIFO freezes no thread.
    let bytes = py
        .allow_threads(|| augloader::file::read(Path::new(path), augloader::file::FileKind::Image))
        .map_err(|e| load_err(format!("{path}: {e}")))?;
    let (img, params) = py
        .allow_threads(|| {
            let mut rng = sample_rng(seed, epoch, index);
            augment_encoded(&bytes, &p, &mut rng, &decode, &mut Resize::new())
        })
        .map_err(|e| load_err(format!("{path}: {e}")))?;
    augmented(img, &params)
}

/// An augmented image as an HWC buffer, with its parameters as JSON.
fn augmented(img: image::RgbImage, params: &Params) -> PyResult<(Buffer, String)> {
    let shape = vec![img.height() as usize, img.width() as usize, 3];
    let json = serde_json::to_string(params).map_err(value_err)?;
    Ok((buffer_u8(img.into_raw().into(), shape), json))
}

/// Augments an HWC uint8 image given as raw bytes.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn augment_array(
    py: Python<'_>,
    data: Vec<u8>,
    height: u32,
    width: u32,
    pipeline: &str,
    overrides: &Bound<'_, PyDict>,
    seed: u64,
    epoch: u64,
    index: u64,
) -> PyResult<(Buffer, String)> {
    let (p, _) = build_pipeline(pipeline, overrides)?;
    let img = image::RgbImage::from_raw(width, height, data)
        .ok_or_else(|| value_err("image bytes do not match its shape"))?;
    let (out, params) = py.allow_threads(|| {
        let mut rng = sample_rng(seed, epoch, index);
        let params = p.sample(&mut rng, img.width(), img.height());
        (p.apply(&img, &params, &mut Resize::new()), params)
    });
    augmented(out, &params)
}

/// One policy op (torchvision's name and signed magnitude) on an HWC uint8 image given as raw
/// bytes, as the policies apply it.
#[pyfunction]
#[pyo3(signature = (data, height, width, op, magnitude, interpolation, fill=None))]
#[allow(clippy::too_many_arguments)]
fn apply_op(
    py: Python<'_>,
    data: Vec<u8>,
    height: u32,
    width: u32,
    op: &str,
    magnitude: Option<f64>,
    interpolation: &str,
    fill: Option<[u8; 3]>,
) -> PyResult<Buffer> {
    use augloader::transform::functional::apply_op;
    use augloader::transform::{Interpolation, OpName, PolicyOp};
    let name: OpName = serde_json::from_value(serde_json::Value::from(op))
        .map_err(|_| value_err(format!("unknown op `{op}`")))?;
    let interp = Interpolation::parse(interpolation).ok_or_else(|| {
        value_err(format!(
            "interpolation must be 'nearest' or 'bilinear', not {interpolation:?}"
        ))
    })?;
    if magnitude.is_some_and(|m| !m.is_finite()) {
        return Err(value_err("magnitude must be finite"));
    }
    let img = image::RgbImage::from_raw(width, height, data)
        .ok_or_else(|| value_err("image bytes do not match its shape"))?;
    let step = PolicyOp {
        op: name,
        magnitude,
    };
    let out = py.allow_threads(|| apply_op(img, &step, interp, fill.map(|f| f.map(f32::from))));
    let shape = vec![out.height() as usize, out.width() as usize, 3];
    Ok(buffer_u8(out.into_raw().into(), shape))
}

/// `F.gaussian_blur` (kernel `[kx, ky]`, sigma `[sx, sy]`) or `F.rgb_to_grayscale(image, 3)` on
/// an HWC uint8 image given as raw bytes (the per-sample ops outside the policies).
#[pyfunction]
#[pyo3(signature = (data, height, width, op, kernel=(3, 3), sigma=(1.0, 1.0)))]
fn apply_pixel_op(
    py: Python<'_>,
    data: Vec<u8>,
    height: u32,
    width: u32,
    op: &str,
    kernel: (usize, usize),
    sigma: (f32, f32),
) -> PyResult<Buffer> {
    use augloader::transform::functional as pixel;
    let mut img = image::RgbImage::from_raw(width, height, data)
        .ok_or_else(|| value_err("image bytes do not match its shape"))?;
    match op {
        "gaussian_blur" => {
            let odd = |k: usize| k % 2 == 1 && k <= 255;
            let positive = |s: f32| s.is_finite() && s > 0.0;
            if !(odd(kernel.0) && odd(kernel.1) && positive(sigma.0) && positive(sigma.1)) {
                return Err(value_err(format!(
                    "gaussian_blur needs odd kernel sizes up to 255 and sigmas > 0, not {kernel:?} {sigma:?}"
                )));
            }
            py.allow_threads(|| {
                pixel::gaussian_blur(&mut img, [kernel.0, kernel.1], [sigma.0, sigma.1])
            });
        }
        "grayscale" => pixel::grayscale(&mut img),
        _ => {
            return Err(value_err(format!(
                "unknown pixel op `{op}` (gaussian_blur, grayscale)"
            )))
        }
    }
    let shape = vec![img.height() as usize, img.width() as usize, 3];
    Ok(buffer_u8(img.into_raw().into(), shape))
}

/// `data` (a JPEG) re-encoded losslessly with a restart marker every `interval` MCUs.
#[pyfunction]
fn add_restart_markers<'py>(
    py: Python<'py>,
    data: &[u8],
    interval: u16,
) -> PyResult<Bound<'py, PyBytes>> {
    if interval == 0 {
        return Err(value_err("interval must be at least 1 MCU"));
    }
    let out = py
        .allow_threads(|| augloader::decode::add_restart_markers(data, interval))
        .map_err(value_err)?;
    Ok(PyBytes::new(py, &out))
}

/// Whether `data` holds `split` of its own (not one ImageFolder used for either split).
#[pyfunction]
fn has_split(data: std::path::PathBuf, split: &str) -> bool {
    let split = if split == "train" {
        Split::Train
    } else {
        Split::Val
    };
    augloader::source::has_split(&data, split)
}

/// The automatic augmentation policies: (name, what it does).
#[pyfunction]
fn policies() -> Vec<(&'static str, &'static str)> {
    augloader::transform::POLICY_NAMES.to_vec()
}

/// The pipeline presets: (name, what it does).
#[pyfunction]
fn presets() -> Vec<(&'static str, &'static str)> {
    PRESETS.iter().map(|p| (p.name, p.about)).collect()
}

/// The TTA views named `tta` inside the pipeline's own geometry, when batches of them can be
/// tensors (views of one size).
fn tta_config(tta: Option<&str>, pipeline: &Pipeline) -> PyResult<Option<TtaConfig>> {
    Ok(match tta {
        None => None,
        Some(name) => {
            let mode = TtaMode::parse(name).ok_or_else(|| {
                let known: Vec<&str> = TTA_MODES.iter().map(|m| m.1).collect();
                value_err(format!(
                    "unknown tta `{name}` (known: {})",
                    known.join(", ")
                ))
            })?;
            // Views inside the pipeline's own geometry (for eval: resize 256, crops 224).
            let cfg = TtaConfig::from_training(mode, pipeline, pipeline);
            // Batches here are tensors [B, V, 3, H, W]: every view of one size.
            if !augloader::tta::fixed_size(&cfg) {
                return Err(value_err(format!(
                    "tta `{name}` makes views of several sizes: batches of views need one \
                     size (use a crop mode)"
                )));
            }
            Some(cfg)
        }
    })
}

/// The loader's defaults (the one table of `augloader::defaults`): batch size, workers,
/// prefetch per worker, seed.
#[pyfunction]
fn defaults() -> Vec<(&'static str, u64)> {
    use augloader::defaults as d;
    vec![
        ("batch_size", d::BATCH_SIZE as u64),
        ("workers", d::workers() as u64),
        ("prefetch_factor", d::PREFETCH_PER_WORKER as u64),
        ("seed", d::SEED),
    ]
}

#[pymodule]
fn _augloader(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LoadError", m.py().get_type::<LoadError>())?;
    m.add_class::<Buffer>()?;
    m.add_class::<PyLoader>()?;
    m.add_class::<PyEpoch>()?;
    m.add_class::<sources::PySource>()?;
    m.add_function(wrap_pyfunction!(sources::files_source, m)?)?;
    m.add_function(wrap_pyfunction!(sources::images_source, m)?)?;
    m.add_function(wrap_pyfunction!(sources::list_source, m)?)?;
    m.add_function(wrap_pyfunction!(augment_file, m)?)?;
    m.add_function(wrap_pyfunction!(augment_array, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(has_split, m)?)?;
    m.add_function(wrap_pyfunction!(apply_op, m)?)?;
    m.add_function(wrap_pyfunction!(policies, m)?)?;
    m.add_function(wrap_pyfunction!(apply_pixel_op, m)?)?;
    m.add_function(wrap_pyfunction!(override_names, m)?)?;
    m.add_function(wrap_pyfunction!(add_restart_markers, m)?)?;
    m.add_function(wrap_pyfunction!(defaults, m)?)?;
    m.add_function(wrap_pyfunction!(sources::is_url, m)?)?;
    Ok(())
}
