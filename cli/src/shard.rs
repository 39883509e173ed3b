//! `augloader shard`: writes a dataset as WebDataset tar shards (`OUT/train-000000.tar`, ...,
//! `OUT/val-000000.tar`, ..., `OUT/classes.txt`), readable by augloader, webdataset and DALI.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use image::ImageFormat;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use augloader::source::{open_dataset, Source, Split};
use augloader::source::{CifarKind, Payload};

#[derive(Args)]
pub struct ShardArgs {
    /// Dataset to write (any layout `--data` reads: ImageFolders, CSV lists, CIFAR, shards).
    #[arg(long)]
    data: PathBuf,
    /// Folder for the shards (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Samples per shard (instead of a size limit).
    #[arg(long, conflicts_with = "shard_size", value_parser = super::ranges::count)]
    per_shard: Option<usize>,
    /// Largest shard size, e.g. 256MB, 1GB, 500KB (a sample larger than this gets a shard of its own).
    #[arg(long, default_value = "256MB", value_parser = parse_size)]
    shard_size: u64,
    /// Keep the dataset's order (by default the samples are shuffled once, with --seed, so that
    /// readers going through a shard in order see mixed classes).
    #[arg(long)]
    keep_order: bool,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Replace shards already in OUT (by default that is an error).
    #[arg(long)]
    overwrite: bool,
    /// Re-encode JPEGs losslessly with a restart marker every N MCUs (0: store them as they are).
    /// The pixels stay the same, and a random crop then decodes only the restart intervals around
    /// its window: its rows and, where N divides the MCUs of a row, its columns. 1 always cuts the
    /// columns: fastest for random crops (resnet-train 1.17x interval 4's rate), 7% larger files,
    /// whole-image decodes about 5% slower; 4 adds only 0.1%. A JPEG that cannot be re-encoded is
    /// stored as it is, and reported.
    #[arg(long, default_value_t = 0)]
    restart_interval: u16,
}

/// "256MB" -> bytes (K, M, G are powers of 1000; KiB, MiB, GiB of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 256MB"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    let bytes = n * mult;
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!(
            "{s:?}: a shard size must be from 1 byte to 1PB (1e15 bytes)"
        ));
    }
    Ok(bytes as u64)
}

/// True when `data` has a validation split of its own (not the same folder read twice).
fn has_val(data: &Path) -> bool {
    matches!(
        augloader::source::shard_paths(data, Split::Val),
        Ok(Some(_))
    ) || CifarKind::detect(data).is_some()
        || data.join("val.csv").is_file()
        || data.join("val").is_dir()
}

pub fn run(a: ShardArgs) -> Result<()> {
    if a.restart_interval > 0 && !augloader::decode::can_add_restart_markers() {
        bail!("--restart-interval needs libjpeg-turbo, which this build of augloader lacks");
    }
    let train = open_dataset(&a.data, Split::Train)?;
    let mut splits = vec![("train", train)];
    if has_val(&a.data) {
        splits.push(("val", open_dataset(&a.data, Split::Val)?));
    }
    check_apart(&a.data, &a.out)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // One writer at a time; with the lock held, staging folders left by dead runs can go.
    let lock_path = a.out.join(".augloader-shard.lock");
    let _lock = augloader::output::lock(&lock_path, false)
        .with_context(|| lock_path.display().to_string())?
        .map_err(|pid| {
            anyhow::anyhow!(
                "{}: another shard process (pid {pid}) is writing this folder",
                a.out.display()
            )
        })?;
    augloader::output::remove_stale(&a.out, ".augloader-shard-", ".tmp");
    let old = old_shards(&a.out)?;
    if !old.is_empty() && !a.overwrite {
        bail!(
            "{} already holds shards ({} and {} more): pass --overwrite to replace them",
            a.out.display(),
            old[0].display(),
            old.len() - 1
        );
    }
    // The new shards are written beside the old ones first; the old go only once all are done.
    let staging = a
        .out
        .join(format!(".augloader-shard-{}.tmp", std::process::id()));
    let written = write_all(&a, &staging, splits);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let lines = written?;
    for p in old {
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    for e in std::fs::read_dir(&staging)? {
        let from = e?.path();
        let to = a.out.join(from.file_name().expect("a file"));
        std::fs::rename(&from, &to).with_context(|| format!("moving {}", to.display()))?;
    }
    std::fs::remove_dir(&staging).with_context(|| format!("removing {}", staging.display()))?;
    for line in lines {
        crate::out::out!("{line}");
    }
    Ok(())
}

/// Writes classes.txt and every split's shards into `dir`; returns what to say of each split.
fn write_all(
    a: &ShardArgs,
    dir: &Path,
    splits: Vec<(&str, Arc<dyn Source>)>,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // classes.txt holds one name per line, read back trimmed: a name it cannot hold as it is
    // would come back as another class.
    let names = splits[0].1.classes();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.contains(['\n', '\r']) || n.trim() != n.as_str())
    {
        bail!(
            "class name {bad:?} cannot be written to classes.txt (one name per line, read back \
             trimmed): rename the class folder without line breaks or surrounding spaces"
        );
    }
    let classes = names.join("\n") + "\n";
    std::fs::write(dir.join("classes.txt"), classes)
        .with_context(|| format!("writing {}", dir.join("classes.txt").display()))?;
    let mut lines = Vec::new();
    for (name, source) in splits {
        let (samples, shards) = write_split(a, dir, name, source)?;
        lines.push(format!(
            "{name}: {samples} samples in {shards} shards: {}/{name}-{{000000..{:06}}}.tar",
            a.out.display(),
            shards.saturating_sub(1)
        ));
    }
    Ok(lines)
}

/// Refuses an output folder that is the input's, inside it, or holding it (links resolved):
/// writing there would replace or mix with the data being read.
fn check_apart(data: &Path, out: &Path) -> Result<()> {
    // A brace pattern or a file names its folder.
    let input = if data.is_dir() {
        data
    } else {
        data.parent().unwrap_or(Path::new("."))
    };
    let input = resolved(input);
    let output = resolved(out);
    if input.starts_with(&output) || output.starts_with(&input) {
        bail!(
            "--out {} and --data {} overlap ({} and {}): shards written there would replace or \
             mix with the input; choose a folder outside it",
            out.display(),
            data.display(),
            output.display(),
            input.display()
        );
    }
    Ok(())
}

/// `p` with links resolved as far as it exists (the rest appended), absolute.
fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut head = abs.as_path();
    let mut tail = Vec::new();
    while !head.exists() {
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                head = parent;
            }
            _ => break,
        }
    }
    let mut r = head.canonicalize().unwrap_or_else(|_| head.to_path_buf());
    r.extend(tail.iter().rev());
    r
}

/// The shards (and their indexes) already in `out`.
fn old_shards(out: &Path) -> Result<Vec<PathBuf>> {
    let mut old = Vec::new();
    for e in std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shard_like = name.starts_with("train-") || name.starts_with("val-");
        if shard_like && (name.ends_with(".tar") || name.ends_with(".tar.idx")) {
            old.push(p);
        }
    }
    Ok(old)
}

/// The bytes and extension a sample is stored with: JPEG (unless restart markers are to be added),
/// PNG and WebP files as they are, anything else (BMP, CIFAR pixels) as PNG. A JPEG that cannot
/// be re-encoded is stored as it is and noted in `kept`.
fn member(
    source: &dyn Source,
    i: usize,
    restarts: u16,
    kept: &mut Vec<String>,
) -> Result<(Vec<u8>, &'static str)> {
    let rgb = match source.read(i)? {
        Payload::Encoded(bytes) => match image::guess_format(&bytes) {
            Ok(ImageFormat::Jpeg) if restarts > 0 => {
                return Ok(
                    match augloader::decode::add_restart_markers(&bytes, restarts) {
                        Ok(b) => (b, "jpg"),
                        Err(e) => {
                            kept.push(format!("{}: {e}", source.name(i)));
                            (bytes, "jpg")
                        }
                    },
                );
            }
            Ok(ImageFormat::Jpeg) => return Ok((bytes, "jpg")),
            Ok(ImageFormat::Png) => return Ok((bytes, "png")),
            Ok(ImageFormat::WebP) => return Ok((bytes, "webp")),
            _ => augloader::decode::decode_rgb8(&bytes, &Default::default())
                .with_context(|| source.name(i))?,
        },
        Payload::Rgb(img) => img,
    };
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)?;
    Ok((png, "png"))
}

/// One open shard being written.
struct Writer {
    tar: tar::Builder<BufWriter<File>>,
    path: PathBuf,
    samples: usize,
    bytes: u64,
}

impl Writer {
    fn create(out: &Path, split: &str, n: usize) -> Result<Self> {
        let path = out.join(format!("{split}-{n:06}.tar"));
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            tar: tar::Builder::new(BufWriter::new(f)),
            path,
            samples: 0,
            bytes: 0,
        })
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Fixed times and owners: the same dataset gives the same bytes.
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, name, data)
            .with_context(|| format!("writing {name} to {}", self.path.display()))?;
        self.bytes += 512 + (data.len() as u64).div_ceil(512) * 512;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let mut w = self.tar.into_inner()?;
        w.flush()?;
        w.into_inner()?.sync_all()?;
        Ok(())
    }
}

/// A sample's name relative to the dataset (no machine paths in the shards).
fn relative(name: &str, data: &Path) -> String {
    Path::new(name)
        .strip_prefix(data)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// Size a sample takes in a tar: a header and whole blocks per member.
fn tar_size(lens: &[usize]) -> u64 {
    lens.iter()
        .map(|&l| 512 + (l as u64).div_ceil(512) * 512)
        .sum()
}

fn write_split(
    a: &ShardArgs,
    dir: &Path,
    split: &str,
    source: Arc<dyn Source>,
) -> Result<(usize, usize)> {
    let mut order: Vec<usize> = (0..source.len()).collect();
    if !a.keep_order {
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed));
    }
    let pb = ProgressBar::new(order.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} samples  {per_sec}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(split.to_string());
    let mut shards = 0;
    let mut w: Option<Writer> = None;
    let mut kept = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let (image, ext) = member(source.as_ref(), i, a.restart_interval, &mut kept)?;
        let label = source.label(i);
        let cls = label.to_string();
        let json = serde_json::json!({
            "label": label,
            "class": source.classes().get(label),
            "source": relative(&source.name(i), &a.data),
        })
        .to_string();
        let size = tar_size(&[image.len(), cls.len(), json.len()]);
        let full = w.as_ref().is_some_and(|w| {
            w.samples > 0
                && match a.per_shard {
                    Some(k) => w.samples >= k,
                    None => w.bytes + size + 1024 > a.shard_size,
                }
        });
        if full {
            w.take().expect("open").finish()?;
        }
        if w.is_none() {
            w = Some(Writer::create(dir, split, shards)?);
            shards += 1;
        }
        let wr = w.as_mut().expect("open");
        let key = format!("{n:08}");
        wr.append(&format!("{key}.{ext}"), &image)?;
        wr.append(&format!("{key}.cls"), cls.as_bytes())?;
        wr.append(&format!("{key}.json"), json.as_bytes())?;
        wr.samples += 1;
        pb.inc(1);
    }
    if let Some(w) = w {
        w.finish()?;
    }
    pb.finish_and_clear();
    if let Some(first) = kept.first() {
        crate::out::note!(
            "{split}: {} JPEGs stored as they were (no restart markers added); first: {first}",
            kept.len()
        );
    }
    Ok((order.len(), shards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256MB"), Ok(256_000_000));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0MB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }
}
