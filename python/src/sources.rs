//! Datasets given to Python as data rather than a folder: image files with their targets, images
//! held in memory (as CIFAR users hold them), and CSV lists with multi-label or regression
//! targets. Each becomes a [`Source`] that the loader samples like any other.

use std::path::PathBuf;
use std::sync::Arc;

use augloader::source::{ListFile, Source};
use augloader::source::{Samples, TargetKind, Targets};
use image::RgbImage;
use pyo3::prelude::*;

use super::{load_err, value_err};

/// A dataset made from Python data; `augloader.Loader` takes it in place of a path.
#[pyclass(frozen, name = "Source", module = "augloader._augloader")]
pub struct PySource {
    pub source: Arc<dyn Source>,
}

/// What `Loader` takes as its data: a path, or a [`PySource`].
#[derive(FromPyObject)]
pub enum DataArg<'py> {
    Source(PyRef<'py, PySource>),
    Path(PathBuf),
}

/// The dataset `data` names: a [`PySource`] as it is, or `split` of a path, less the samples
/// an exclude list names.
/// Shards at URLs: (shuffle window or 0, cache folder or "", cache size, skip missing shards,
/// shards fetched ahead).
pub type RemoteArgs = (usize, String, String, bool, usize);

/// Whether `data` names shards at URLs (`http(s)://`, `s3://`, `gs://`, `az://`, `pipe:`).
#[pyfunction]
pub fn is_url(data: &str) -> bool {
    augloader::remote::is_url(data)
}

/// The cache and fetch settings of `r`.
fn remote_options(r: Option<&RemoteArgs>) -> PyResult<augloader::remote::RemoteOptions> {
    let mut o = augloader::remote::RemoteOptions::default();
    if let Some((_, dir, size, skip, ahead)) = r {
        if !dir.is_empty() {
            o.cache_dir = PathBuf::from(dir);
        }
        o.cache_size = augloader::remote::parse_size(size).map_err(value_err)?;
        o.skip_missing = *skip;
        o.ahead = *ahead;
    }
    Ok(o)
}

pub fn open(
    data: DataArg<'_>,
    split: augloader::source::Split,
    exclude: Option<PathBuf>,
    remote: Option<&RemoteArgs>,
) -> PyResult<Arc<dyn Source>> {
    Ok(match data {
        DataArg::Source(s) => s.source.clone(),
        DataArg::Path(p) if p.to_str().is_some_and(augloader::remote::is_url) => {
            let url = p.to_str().expect("checked");
            let s = augloader::source::TarShards::open_url_pattern(url, remote_options(remote)?)
                .map_err(load_err)?;
            for (u, why) in s.missing() {
                // Listed where Python sees it: a warning naming each shard left out.
                Python::with_gil(|py| {
                    let msg = format!("skipped shard {u}: {why}");
                    let _ = PyErr::warn(
                        py,
                        &py.get_type::<pyo3::exceptions::PyUserWarning>(),
                        &std::ffi::CString::new(msg).unwrap_or_default(),
                        1,
                    );
                });
            }
            Arc::new(s)
        }
        // A path, not text: file names that are not UTF-8 arrive as surrogate escapes.
        DataArg::Path(p) => {
            let s = augloader::source::open_dataset(&p, split).map_err(load_err)?;
            match exclude {
                Some(list) => {
                    augloader::source::exclude(s, &p, &list)
                        .map_err(load_err)?
                        .0
                }
                None => s,
            }
        }
    })
}

/// The targets Python passes: ("class", [int]), ("multilabel", [[int]], classes) or
/// ("regression", [float] row-major, width).
fn targets(kind: &str, labels: &Bound<'_, PyAny>, width: usize) -> PyResult<Targets> {
    Ok(match kind {
        "class" => Targets::Class(labels.extract()?),
        "multilabel" => {
            let labels: Vec<Vec<u32>> = labels.extract()?;
            let max = labels.iter().flatten().max().map_or(1, |&m| m as usize + 1);
            Targets::MultiLabel {
                labels,
                classes: if width > 0 { width } else { max },
            }
        }
        "regression" => Targets::Regression {
            values: labels.extract()?,
            width,
        },
        _ => return Err(value_err(format!("unknown target kind `{kind}`"))),
    })
}

fn named(s: Samples, classes: Option<Vec<String>>) -> PyResult<PySource> {
    let s = match classes {
        Some(names) => s.with_classes(names).map_err(value_err)?,
        None => s,
    };
    Ok(PySource {
        source: Arc::new(s),
    })
}

/// Image files, one target each.
#[pyfunction]
#[pyo3(signature = (paths, kind, labels, width, classes=None))]
pub fn files_source(
    paths: Vec<PathBuf>,
    kind: &str,
    labels: &Bound<'_, PyAny>,
    width: usize,
    classes: Option<Vec<String>>,
) -> PyResult<PySource> {
    let t = targets(kind, labels, width)?;
    named(Samples::files(paths, t).map_err(value_err)?, classes)
}

/// Images in memory: `data` holds them one after another, `shapes` their (height, width,
/// channels) with 1 (grey) or 3 (RGB) channels.
#[pyfunction]
#[pyo3(signature = (data, shapes, kind, labels, width, classes=None))]
pub fn images_source(
    py: Python<'_>,
    data: &[u8],
    shapes: Vec<(u32, u32, u32)>,
    kind: &str,
    labels: &Bound<'_, PyAny>,
    width: usize,
    classes: Option<Vec<String>>,
) -> PyResult<PySource> {
    let t = targets(kind, labels, width)?;
    let images = py.allow_threads(|| split_images(data, &shapes))?;
    named(Samples::images(images, t).map_err(value_err)?, classes)
}

fn split_images(data: &[u8], shapes: &[(u32, u32, u32)]) -> PyResult<Vec<RgbImage>> {
    let mut off = 0usize;
    let mut out = Vec::with_capacity(shapes.len());
    for (i, &(h, w, c)) in shapes.iter().enumerate() {
        if h == 0 || w == 0 || !(c == 1 || c == 3) {
            return Err(value_err(format!(
                "image #{i} is {h}x{w}x{c}: images need a height and width of at least 1 and 1 or 3 channels"
            )));
        }
        let n = h as usize * w as usize * c as usize;
        let Some(px) = data.get(off..off + n) else {
            return Err(value_err(format!("image #{i}: the data ends early")));
        };
        off += n;
        let rgb = if c == 3 {
            px.to_vec()
        } else {
            px.iter().flat_map(|&v| [v, v, v]).collect()
        };
        out.push(RgbImage::from_raw(w, h, rgb).expect("length checked"));
    }
    Ok(out)
}

/// A CSV list with targets of `kind` (`width` classes or values; 0: from the list).
#[pyfunction]
pub fn list_source(path: PathBuf, kind: &str, width: usize) -> PyResult<PySource> {
    let kind = match kind {
        "class" => TargetKind::Class,
        "multilabel" => TargetKind::MultiLabel(width),
        "regression" => TargetKind::Regression(width),
        _ => return Err(value_err(format!("unknown target kind `{kind}`"))),
    };
    let list = ListFile::open_as(&path, false, kind).map_err(load_err)?;
    Ok(PySource {
        source: Arc::new(list),
    })
}

#[pymethods]
impl PySource {
    fn __len__(&self) -> usize {
        self.source.len()
    }

    /// ("class" | "multilabel" | "regression", width of the float rows).
    fn target_kind(&self) -> (&'static str, usize) {
        kind_of(self.source.as_ref())
    }
}

/// The source's target kind as Python names it, with its width.
pub fn kind_of(s: &dyn Source) -> (&'static str, usize) {
    match s.target_kind() {
        TargetKind::Class => ("class", 0),
        TargetKind::MultiLabel(n) => ("multilabel", n),
        TargetKind::Regression(n) => ("regression", n),
    }
}
