//! CIFAR-10 and CIFAR-100 in their binary distributions, held in memory (at most 180 MB).

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{Payload, Source, SourceError};

const PIXELS: usize = 32 * 32 * 3;

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which CIFAR and which label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: data_batch_1..5.bin, test_batch.bin; records of 1 label byte + 3072 pixels.
    Cifar10,
    /// CIFAR-100 with its 100 fine labels: train.bin, test.bin; records of coarse, fine + 3072.
    Cifar100Fine,
    /// CIFAR-100 with its 20 coarse labels.
    Cifar100Coarse,
}

impl CifarKind {
    /// Detects CIFAR-10 or CIFAR-100 (fine labels) binaries in `dir`.
    pub fn detect(dir: &Path) -> Option<Self> {
        if dir.join("data_batch_1.bin").is_file() || dir.join("test_batch.bin").is_file() {
            Some(CifarKind::Cifar10)
        } else if dir.join("train.bin").is_file() && dir.join("test.bin").is_file() {
            Some(CifarKind::Cifar100Fine)
        } else {
            None
        }
    }

    fn record(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1 + PIXELS,
            _ => 2 + PIXELS,
        }
    }

    fn files(self, train: bool) -> Vec<&'static str> {
        match (self, train) {
            (CifarKind::Cifar10, true) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarKind::Cifar10, false) => vec!["test_batch.bin"],
            (_, true) => vec!["train.bin"],
            (_, false) => vec!["test.bin"],
        }
    }
}

/// A CIFAR split in memory.
#[derive(Debug, Clone)]
pub struct Cifar {
    kind: CifarKind,
    // (file, bytes) per file; records index across files in order.
    files: Vec<(PathBuf, Vec<u8>)>,
    starts: Vec<usize>,
    classes: Vec<String>,
    len: usize,
}

impl Cifar {
    /// Reads the train (`train = true`) or test split of `kind` from `dir`.
    pub fn open(dir: &Path, kind: CifarKind, train: bool) -> Result<Self, SourceError> {
        let record = kind.record();
        let mut files = Vec::new();
        let mut starts = Vec::new();
        let mut len = 0;
        for name in kind.files(train) {
            let path = dir.join(name);
            let bytes = crate::file::read(&path, crate::file::FileKind::Cifar)
                .map_err(|e| SourceError::io(&path, e))?;
            if bytes.is_empty() || bytes.len() % record != 0 {
                return Err(SourceError::BadCifarLength {
                    path,
                    len: bytes.len() as u64,
                    record,
                });
            }
            starts.push(len);
            len += bytes.len() / record;
            files.push((path, bytes));
        }
        let n = match kind {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        };
        let classes = match kind {
            CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
            _ => (0..n).map(|i| format!("class{i:03}")).collect(),
        };
        let c = Cifar {
            kind,
            files,
            starts,
            classes,
            len,
        };
        for i in 0..c.len {
            let label = c.label(i);
            if label >= n {
                let (f, r) = c.locate(i);
                return Err(SourceError::BadCifarLabel {
                    path: c.files[f].0.clone(),
                    record: r,
                    label,
                    classes: n,
                });
            }
        }
        Ok(c)
    }

    fn locate(&self, index: usize) -> (usize, usize) {
        let f = self.starts.partition_point(|&s| s <= index) - 1;
        (f, index - self.starts[f])
    }

    fn record(&self, index: usize) -> &[u8] {
        let (f, r) = self.locate(index);
        let size = self.kind.record();
        &self.files[f].1[r * size..(r + 1) * size]
    }
}

impl Source for Cifar {
    fn len(&self) -> usize {
        self.len
    }
    fn label(&self, index: usize) -> usize {
        let rec = self.record(index);
        match self.kind {
            CifarKind::Cifar10 | CifarKind::Cifar100Coarse => rec[0] as usize,
            CifarKind::Cifar100Fine => rec[1] as usize,
        }
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn name(&self, index: usize) -> String {
        let (f, r) = self.locate(index);
        format!("{}#{r}", self.files[f].0.display())
    }
    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        let rec = self.record(index);
        let planes = &rec[rec.len() - PIXELS..];
        // Stored as three 32x32 planes (R, G, B); interleave to HWC.
        let mut hwc = vec![0u8; PIXELS];
        for p in 0..1024 {
            for c in 0..3 {
                hwc[p * 3 + c] = planes[c * 1024 + p];
            }
        }
        Ok(Payload::Rgb(RgbImage::from_raw(32, 32, hwc).unwrap()))
    }
}
