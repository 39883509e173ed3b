//! Samples the caller holds: a list of image files, or decoded images in memory (as CIFAR users
//! hold them), each with its target ([`Targets`]).

use std::path::PathBuf;

use image::RgbImage;

use super::{Payload, Source, SourceError, TargetKind, Targets};

/// A dataset given as data rather than found in a folder.
#[derive(Debug, Clone)]
pub struct Samples {
    items: Items,
    targets: Targets,
    classes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Items {
    Files(Vec<PathBuf>),
    Images(Vec<RgbImage>),
}

impl Samples {
    /// Image files (read and decoded when sampled), one target each.
    pub fn files(paths: Vec<PathBuf>, targets: Targets) -> Result<Self, SourceError> {
        Self::new(Items::Files(paths), targets)
    }

    /// Decoded RGB images, one target each (of any sizes: a cropping pipeline evens them out).
    pub fn images(images: Vec<RgbImage>, targets: Targets) -> Result<Self, SourceError> {
        Self::new(Items::Images(images), targets)
    }

    fn new(items: Items, targets: Targets) -> Result<Self, SourceError> {
        let len = match &items {
            Items::Files(p) => p.len(),
            Items::Images(i) => i.len(),
        };
        let s = Samples {
            items,
            classes: targets.class_names(),
            targets,
        };
        if len == 0 {
            return Err(s.bad("no samples".into()));
        }
        if let Err(reason) = s.targets.check(len, |i| s.name(i)) {
            return Err(s.bad(reason));
        }
        Ok(s)
    }

    /// Names the classes (in label order); there must be one per class of the targets at least.
    pub fn with_classes(mut self, names: Vec<String>) -> Result<Self, SourceError> {
        if names.len() < self.classes.len() {
            return Err(self.bad(format!(
                "{} class names for {} classes",
                names.len(),
                self.classes.len()
            )));
        }
        if matches!(self.targets, Targets::MultiLabel { classes, .. } if classes != names.len()) {
            return Err(self.bad(format!(
                "{} class names for multi-label rows of {} classes",
                names.len(),
                self.classes.len()
            )));
        }
        self.classes = names;
        Ok(self)
    }

    fn bad(&self, reason: String) -> SourceError {
        let what = match self.items {
            Items::Files(_) => "image files",
            Items::Images(_) => "images in memory",
        };
        SourceError::BadSamples {
            what: what.into(),
            reason,
        }
    }
}

impl Source for Samples {
    fn len(&self) -> usize {
        self.targets.len()
    }
    fn label(&self, index: usize) -> usize {
        self.targets.label(index)
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn name(&self, index: usize) -> String {
        match &self.items {
            Items::Files(p) => p[index].display().to_string(),
            Items::Images(_) => format!("image #{index}"),
        }
    }
    fn name_bytes(&self, index: usize) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        match &self.items {
            Items::Files(p) => p[index].as_os_str().as_bytes().to_vec(),
            Items::Images(_) => self.name(index).into_bytes(),
        }
    }
    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        match &self.items {
            Items::Files(p) => super::read_image_file(&p[index]).map(Payload::Encoded),
            Items::Images(i) => Ok(Payload::Rgb(i[index].clone())),
        }
    }
    fn target_kind(&self) -> TargetKind {
        self.targets.kind()
    }
    fn write_target(&self, index: usize, out: &mut [f32]) {
        self.targets.write(index, out);
    }
}
