//! Value parsers for numeric flags: every range is checked here, at parse time, so a bad value
//! is refused with the flag's name (clap adds it) instead of panicking or misleading later.

use augloader::transform::MAX_CUTOUT_HOLES;
/// Largest crop or resize side accepted (a 4096 px batch of 64 is already 3 GB).
pub use augloader::transform::MAX_SIDE;

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))
}

fn finite(s: &str) -> Result<f64, String> {
    let v: f64 = number(s)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number"))
    }
}

/// An image side in pixels: 1..=MAX_SIDE.
pub fn side(s: &str) -> Result<u32, String> {
    let v: u32 = number(s)?;
    if (1..=MAX_SIDE).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 1..={MAX_SIDE} pixels"))
    }
}

/// A side in pixels where 0 turns the op off: 0..=MAX_SIDE.
pub fn side_or_zero(s: &str) -> Result<u32, String> {
    match number::<u32>(s)? {
        0 => Ok(0),
        _ => side(s),
    }
}

/// A count of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    let v: usize = number(s)?;
    if v >= 1 {
        Ok(v)
    } else {
        Err("must be at least 1".into())
    }
}

/// A count that may be 0, up to MAX.
pub fn index_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    let v: usize = number(s)?;
    if v <= MAX {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..={MAX}"))
    }
}

/// Worker threads: 1..=MAX_WORKERS (the loader's limit).
pub fn workers(s: &str) -> Result<usize, String> {
    let v = count(s)?;
    let max = augloader::MAX_WORKERS;
    if v <= max {
        Ok(v)
    } else {
        Err(format!("{v} is outside 1..={max}"))
    }
}

/// libtorch threads: 1..=MAX_WORKERS.
#[cfg(feature = "torch")]
pub fn threads(s: &str) -> Result<i32, String> {
    workers(s).map(|v| v as i32)
}

/// A count in 1..=MAX: sizes whose product is allocated (contact sheets, layer widths).
pub fn count_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    let v = count(s)?;
    if v <= MAX {
        Ok(v)
    } else {
        Err(format!("{v} is outside 1..={MAX}"))
    }
}

/// [`count`] as u64.
pub fn count_u64(s: &str) -> Result<u64, String> {
    count(s).map(|v| v as u64)
}

/// Cutout holes per image: 0..=MAX_CUTOUT_HOLES.
pub fn holes(s: &str) -> Result<u32, String> {
    let v: u32 = number(s)?;
    if v <= MAX_CUTOUT_HOLES {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..={MAX_CUTOUT_HOLES}"))
    }
}

/// A finite number >= 0.
pub fn nonneg(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} is negative"))
    }
}

/// [`nonneg`] as f32.
pub fn nonneg32(s: &str) -> Result<f32, String> {
    nonneg(s).map(|v| v as f32)
}

/// A finite number > 0.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
pub fn positive(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be greater than 0"))
    }
}

/// A probability in [0, 1].
pub fn probability(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1]"))
    }
}

/// A fraction in [0, 1), such as momentum or label smoothing.
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
pub fn fraction(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1)"))
    }
}

/// Hue jitter in [0, 0.5].
pub fn hue(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if (0.0..=0.5).contains(&v) {
        Ok(v as f32)
    } else {
        Err(format!("{v} is outside [0, 0.5]"))
    }
}

// Names: each flag that takes a name reads the library's registry, so parsing, `--help` and the
// library cannot drift apart.

/// A pipeline preset of [`augloader::transform::PRESETS`].
/// `--auto-augment`: a policy of [`augloader::transform::POLICY_NAMES`] or `none`.
pub fn policies() -> clap::builder::PossibleValuesParser {
    let mut v: Vec<clap::builder::PossibleValue> = augloader::transform::POLICY_NAMES
        .iter()
        .map(|(n, about)| clap::builder::PossibleValue::new(*n).help(*about))
        .collect();
    v.push(clap::builder::PossibleValue::new("none").help("no policy"));
    v.into()
}

/// `--ra-ops`: 0..=16.
pub fn policy_ops(s: &str) -> Result<u32, String> {
    let v: u32 = number(s)?;
    let max = augloader::transform::MAX_POLICY_OPS;
    if v <= max {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..={max}"))
    }
}

/// `--ra-magnitude`: a bin of 31, 0..=30.
pub fn ra_magnitude(s: &str) -> Result<u32, String> {
    let v: u32 = number(s)?;
    if v <= 30 {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=30 (31 magnitude bins)"))
    }
}

/// `--mixup` / `--cutmix`: a Beta alpha in 0..=100 (0 disables).
pub fn mix_alpha(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=100 (0 disables)"))
    }
}

/// `--random-erase-value`: `random`, a number or `r,g,b`.
pub fn erase_value(s: &str) -> Result<String, String> {
    augloader::transform::EraseValue::parse(s).map(|_| s.to_string())
}

pub fn presets() -> clap::builder::PossibleValuesParser {
    augloader::transform::PRESETS
        .map(|p| clap::builder::PossibleValue::new(p.name).help(p.about))
        .into()
}

/// A model of the registry [`augloader_train::MODELS`].
#[cfg(feature = "torch")]
pub fn model(s: &str) -> Result<String, String> {
    augloader_train::family(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// `--model`'s long help: the registry's families.
#[cfg(feature = "torch")]
pub fn model_help() -> String {
    let mut h = "Model. Known:".to_string();
    for f in &augloader_train::MODELS {
        h += &format!("\n  - {}", f.names);
    }
    h
}

/// A device of [`augloader_train::trainer::DEVICES`].
#[cfg(feature = "torch")]
pub fn device() -> clap::builder::PossibleValuesParser {
    augloader_train::trainer::DEVICES
        .map(|(name, help)| clap::builder::PossibleValue::new(name).help(help))
        .into()
}

/// A mode of [`augloader::tta::TTA_MODES`].
#[cfg(feature = "torch")]
pub fn tta_mode() -> clap::builder::PossibleValuesParser {
    augloader::tta::TTA_MODES
        .map(|(_, name, help)| clap::builder::PossibleValue::new(name).help(help))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_would_panic_or_mislead() {
        assert!(side("0").is_err() && side("100000").is_err() && side("32").is_ok());
        assert!(side_or_zero("0") == Ok(0) && side_or_zero("5000").is_err());
        assert!(nonneg("nan").is_err() && nonneg("inf").is_err() && nonneg("-1").is_err());
        assert!(positive("0").is_err() && positive("-1").is_err() && positive("0.1").is_ok());
        assert!(fraction("1").is_err() && fraction("2").is_err() && fraction("0.9").is_ok());
        assert!(probability("1.5").is_err() && probability("1").is_ok());
        assert!(hue("0.6").is_err() && count("0").is_err() && count("x").is_err());
    }
}
