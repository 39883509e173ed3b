//! What a sample is trained towards: one class index (the default), several classes
//! (multi-label: a multi-hot row), or float values (regression). Class targets travel as
//! [`crate::Batch::labels`]; the others as float rows in [`crate::Batch::targets`].

/// The kind of target a source's samples carry, with the width of its float rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// One class index per sample ([`super::Source::label`]).
    #[default]
    Class,
    /// A set of class indices per sample, as a multi-hot row of this many classes.
    MultiLabel(usize),
    /// This many float values per sample.
    Regression(usize),
}

impl TargetKind {
    /// Width of the float rows (0 for class targets, which have none).
    pub fn width(self) -> usize {
        match self {
            TargetKind::Class => 0,
            TargetKind::MultiLabel(n) | TargetKind::Regression(n) => n,
        }
    }

    /// The kind named `class`, `multilabel` or `regression` (width filled in later).
    pub fn parse(name: &str) -> Option<TargetKind> {
        match name {
            "class" => Some(TargetKind::Class),
            "multilabel" | "multi-label" => Some(TargetKind::MultiLabel(0)),
            "regression" => Some(TargetKind::Regression(0)),
            _ => None,
        }
    }
}

/// Every sample's target, in dataset order.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class index per sample.
    Class(Vec<usize>),
    /// Class indices per sample (possibly none), out of `classes`.
    MultiLabel {
        /// Each sample's classes.
        labels: Vec<Vec<u32>>,
        /// Number of classes (the row width).
        classes: usize,
    },
    /// `width` floats per sample, row-major.
    Regression {
        /// `len x width` values.
        values: Vec<f32>,
        /// Values per sample.
        width: usize,
    },
}

impl Targets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Class(l) => l.len(),
            Targets::MultiLabel { labels, .. } => labels.len(),
            Targets::Regression { values, width } => values.len() / (*width).max(1),
        }
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind, with its width.
    pub fn kind(&self) -> TargetKind {
        match self {
            Targets::Class(_) => TargetKind::Class,
            Targets::MultiLabel { classes, .. } => TargetKind::MultiLabel(*classes),
            Targets::Regression { width, .. } => TargetKind::Regression(*width),
        }
    }

    /// The class label of sample `i`: its class, a multi-label sample's first class (0 with
    /// none), 0 for regression.
    pub fn label(&self, i: usize) -> usize {
        match self {
            Targets::Class(l) => l[i],
            Targets::MultiLabel { labels, .. } => labels[i].first().map_or(0, |&c| c as usize),
            Targets::Regression { .. } => 0,
        }
    }

    /// Writes sample `i`'s float row into `out` (of the kind's width); nothing for classes.
    pub fn write(&self, i: usize, out: &mut [f32]) {
        match self {
            Targets::Class(_) => {}
            Targets::MultiLabel { labels, .. } => {
                out.fill(0.0);
                for &c in &labels[i] {
                    out[c as usize] = 1.0;
                }
            }
            Targets::Regression { values, width } => {
                out.copy_from_slice(&values[i * width..(i + 1) * width]);
            }
        }
    }

    /// Class names for these targets: "0".."n-1" (`classes` given, or one past the largest
    /// label); none for regression.
    pub(crate) fn class_names(&self) -> Vec<String> {
        let n = match self {
            Targets::Class(l) => l.iter().max().map_or(0, |m| m + 1),
            Targets::MultiLabel { classes, .. } => *classes,
            Targets::Regression { .. } => 0,
        };
        (0..n).map(|i| i.to_string()).collect()
    }

    /// Checks that there are `n` targets, multi-label classes inside their width and
    /// regression values finite, naming the first sample that is not.
    pub fn check(&self, n: usize, name: impl Fn(usize) -> String) -> Result<(), String> {
        if self.len() != n {
            return Err(format!("{} targets for {n} samples", self.len()));
        }
        match self {
            Targets::Class(l) => match l.iter().position(|&c| c > super::MAX_LABEL) {
                Some(i) => Err(format!(
                    "{}: label {} is above the maximum of {}",
                    name(i),
                    l[i],
                    super::MAX_LABEL
                )),
                None => Ok(()),
            },
            Targets::MultiLabel { labels, classes } => {
                if *classes == 0 || *classes > super::MAX_LABEL + 1 {
                    return Err(format!(
                        "multi-label targets need 1..={} classes, not {classes}",
                        super::MAX_LABEL + 1
                    ));
                }
                match labels
                    .iter()
                    .position(|l| l.iter().any(|&c| c as usize >= *classes))
                {
                    Some(i) => Err(format!(
                        "{}: labels {:?} are not all below the {classes} classes",
                        name(i),
                        labels[i]
                    )),
                    None => Ok(()),
                }
            }
            Targets::Regression { values, width } => {
                if *width == 0 {
                    return Err("regression targets need at least one value per sample".into());
                }
                match values.iter().position(|v| !v.is_finite()) {
                    Some(p) => Err(format!(
                        "{}: regression value {} is not finite",
                        name(p / width),
                        values[p]
                    )),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Parses a multi-label field: class indices separated by spaces or `;` (empty: none).
pub(crate) fn parse_multilabel(field: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for t in field.split([' ', ';']).filter(|t| !t.is_empty()) {
        match t.parse::<u32>() {
            Ok(c) if c as usize <= super::MAX_LABEL => out.push(c),
            _ => {
                return Err(format!(
                    "label `{t}` is not an integer in 0..={}",
                    super::MAX_LABEL
                ))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses regression fields: finite floats.
pub(crate) fn parse_values<'a>(
    fields: impl Iterator<Item = &'a str>,
    out: &mut Vec<f32>,
) -> Result<(), String> {
    for f in fields {
        match f.trim().parse::<f32>() {
            Ok(v) if v.is_finite() => out.push(v),
            _ => return Err(format!("value `{}` is not a finite number", f.trim())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_checks() {
        let t = Targets::MultiLabel {
            labels: vec![vec![0, 2], vec![]],
            classes: 3,
        };
        let mut row = [9.0; 3];
        t.write(0, &mut row);
        assert_eq!(row, [1.0, 0.0, 1.0]);
        t.write(1, &mut row);
        assert_eq!(row, [0.0; 3]);
        assert_eq!((t.label(0), t.label(1)), (0, 0));
        let bad = Targets::MultiLabel {
            labels: vec![vec![3]],
            classes: 3,
        };
        let e = bad.check(1, |i| format!("sample {i}")).unwrap_err();
        assert!(e.contains("sample 0") && e.contains("[3]"), "{e}");
        let r = Targets::Regression {
            values: vec![1.0, f32::NAN],
            width: 1,
        };
        assert!(r.check(2, |i| i.to_string()).unwrap_err().contains("1: "));
        assert_eq!(parse_multilabel("3;1 3").unwrap(), vec![1, 3]);
        assert!(parse_multilabel("1,x").is_err());
    }
}
