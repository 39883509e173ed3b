//! Shards streamed from servers on the loopback interface: Python's http.server
//! (tests/servers/shard_http.py, with faults on request) and moto's S3-compatible server. The
//! batches equal those of the same shards read locally, byte for byte; resume is exact; faults
//! are retried or named; processes share one cache; the cache stays under its size.

#[path = "../../tests/util/mod.rs"]
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use augloader::remote::RemoteOptions;
use augloader::source::{Source, TarShards};
use augloader::transform::Pipeline;
use augloader::{Batch, Loader};

fn augloader() -> Command {
    Command::new(env!("CARGO_BIN_EXE_augloader"))
}

fn python() -> String {
    std::env::var("AUGLOADER_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A server process, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(dir: &Path, faults: &[&str]) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/servers/shard_http.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(dir)
        .args(faults)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the test server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .expect("the server's port")
        .parse()
        .unwrap();
    Server { child, port }
}

/// The server's GET counts by path.
fn stats(port: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /__stats HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// A synthetic dataset's training split as 6 shards of 7 (36 samples), in the folder's order.
fn shards() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let out = d.path().join("shards");
    util::synth(&data, 4, 9, 3, 40, 1);
    util::ok(
        augloader()
            .args(["shard", "--keep-order", "--per-shard", "7", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    (d, out)
}

const PATTERN: &str = "train-{000000..000005}.tar";

/// `bench --checksum` over `data` with `extra` flags: (checksum, stderr).
fn bench(data: &str, extra: &[&str]) -> Result<(String, String), String> {
    let out = augloader()
        .args([
            "bench",
            "--epochs",
            "2",
            "--batch",
            "5",
            "--checksum",
            "--json",
        ])
        .args([
            "--size",
            "32",
            "--workers",
            "2",
            "--shuffle-window",
            "2",
            "--data",
            data,
        ])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(err);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    Ok((v["checksum"].as_str().unwrap().to_string(), err))
}

fn local(out: &Path) -> String {
    bench(out.join(PATTERN).to_str().unwrap(), &[]).unwrap().0
}

fn cache_flag(d: &Path) -> Vec<String> {
    vec!["--cache-dir".into(), d.display().to_string()]
}

fn with_cache<'a>(flags: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    flags
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

#[test]
fn http_shards_give_the_local_batches_and_resume_exactly() {
    let (d, out) = shards();
    let want = local(&out);
    let server = http_server(&out, &[]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let cache = cache_flag(&d.path().join("cache"));
    let (got, _) = bench(&url, &with_cache(&cache, &[])).unwrap();
    assert_eq!(got, want, "http batches equal the local ones");
    // The indexes beside the shards were used: each shard fetched once over two epochs.
    let s = stats(server.port);
    for k in 0..6 {
        assert_eq!(s[format!("/train-{k:06}.tar")], 1, "{s}");
    }
    // Library: resume mid-epoch equals the uninterrupted epoch, and the classes came along.
    let opts = RemoteOptions {
        cache_dir: d.path().join("cache2"),
        ..RemoteOptions::default()
    };
    let src: Arc<dyn Source> = Arc::new(TarShards::open_url_pattern(&url, opts).unwrap());
    assert_eq!((src.len(), src.classes().len()), (36, 4));
    let l = Loader::builder(src, Pipeline::eval().with_size(32))
        .batch_size(5)
        .workers(2)
        .shuffle_window(2)
        .build()
        .unwrap();
    let full: Vec<Batch> = l.epoch(3).map(|b| b.unwrap()).collect();
    let rest: Vec<Batch> = l.epoch_from(3, 4).map(|b| b.unwrap()).collect();
    assert_eq!(rest, full[4..].to_vec());
}

#[test]
fn pipe_commands_read_shards() {
    let (d, out) = shards();
    let want = local(&out);
    let cmd = format!("pipe:cat {}", out.join(PATTERN).display());
    let cache = cache_flag(&d.path().join("cache"));
    let (got, _) = bench(&cmd, &with_cache(&cache, &[])).unwrap();
    assert_eq!(got, want);
}

#[test]
fn failed_requests_are_retried_and_bad_shards_named() {
    let (d, out) = shards();
    let want = local(&out);
    let faults = [
        "--fail500",
        "train-000001.tar:2",
        "--drop",
        "train-000002.tar:1",
    ];
    let server = http_server(&out, &faults);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let cache = cache_flag(&d.path().join("cache"));
    let (got, _) = bench(&url, &with_cache(&cache, &[])).unwrap();
    assert_eq!(
        got, want,
        "500 twice and a dropped connection, then the same batches"
    );
    let s = stats(server.port);
    assert_eq!(
        (
            s["/train-000001.tar"].as_u64(),
            s["/train-000002.tar"].as_u64()
        ),
        (Some(3), Some(2)),
        "{s}"
    );
    // A shard missing on the server: named, or skipped and listed.
    let missing = format!(
        "http://127.0.0.1:{}/train-{{000000..000006}}.tar",
        server.port
    );
    let err = bench(&missing, &with_cache(&cache, &[])).unwrap_err();
    assert!(err.contains("train-000006.tar"), "{err}");
    let (_, note) = bench(
        &missing,
        &with_cache(&cache, &["--on-missing-shard", "skip"]),
    )
    .unwrap();
    assert!(
        note.contains("skipped shard") && note.contains("train-000006.tar"),
        "{note}"
    );
    // A shard truncated on the server (its index beside it no longer fits): indexed from what
    // arrived, its lost samples named; with --on-error skip they are listed.
    drop(server);
    let server = http_server(&out, &["--truncate", "train-000003.tar"]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let cache = cache_flag(&d.path().join("cache-t"));
    let err = bench(&url, &with_cache(&cache, &[])).unwrap_err();
    assert!(err.contains("train-000003.tar"), "{err}");
    let (_, note) = bench(&url, &with_cache(&cache, &["--on-error", "skip"])).unwrap();
    assert!(note.contains("train-000003.tar"), "{note}");
}

#[test]
fn two_processes_share_a_cache_and_download_each_shard_once() {
    let (d, out) = shards();
    let want = local(&out);
    // Without indexes on the server, opening fetches every shard: the first process fetches,
    // the second waits on the lock and finds it.
    for k in 0..6 {
        std::fs::remove_file(out.join(format!("train-{k:06}.tar.idx"))).unwrap();
    }
    let server = http_server(&out, &[]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let cache = cache_flag(&d.path().join("cache"));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (url, cache) = (url.clone(), cache.clone());
            std::thread::spawn(move || bench(&url, &with_cache(&cache, &[])).unwrap().0)
        })
        .collect();
    for r in runs {
        assert_eq!(r.join().unwrap(), want);
    }
    let s = stats(server.port);
    for k in 0..6 {
        assert_eq!(s[format!("/train-{k:06}.tar")], 1, "{s}");
    }
}

#[test]
fn the_cache_never_holds_more_than_its_size() {
    let (d, out) = shards();
    let want = local(&out);
    let largest = (0..6)
        .map(|k| {
            std::fs::metadata(out.join(format!("train-{k:06}.tar")))
                .unwrap()
                .len()
        })
        .max()
        .unwrap();
    let size = (largest * 5 / 2).to_string();
    let server = http_server(&out, &[]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let dir = d.path().join("cache");
    let cache = cache_flag(&dir);
    let (got, _) = bench(&url, &with_cache(&cache, &["--cache-size", &size])).unwrap();
    assert_eq!(got, want);
    let held: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(held <= largest * 5 / 2, "{held} bytes held");
    // With room for the window's shards and those fetched ahead, two epochs fetch each shard
    // at most once per epoch.
    drop(server);
    let server = http_server(&out, &[]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let roomy = (largest * 4).to_string();
    let cache = cache_flag(&d.path().join("cache-4"));
    let flags = with_cache(&cache, &["--cache-size", &roomy, "--fetch-ahead", "1"]);
    assert_eq!(bench(&url, &flags).unwrap().0, want);
    let s = stats(server.port);
    for k in 0..6 {
        assert!(
            s[format!("/train-{k:06}.tar")].as_u64().unwrap() <= 2,
            "{s}"
        );
    }
    // A cache folder pointed at the served shards (the user's own files) evicts none of them.
    let before: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let own = cache_flag(&out);
    let flags = with_cache(&own, &["--cache-size", &size]);
    assert_eq!(bench(&url, &flags).unwrap().0, want);
    assert!(
        before.iter().all(|p| p.exists()),
        "a shard of the user's was evicted"
    );
    // A cache smaller than one shard is refused by name.
    let err = bench(
        &url,
        &with_cache(
            &cache_flag(&d.path().join("tiny")),
            &["--cache-size", "100"],
        ),
    )
    .unwrap_err();
    assert!(err.contains("--cache-size"), "{err}");
}

/// moto's S3-compatible server, if installed (the suite installs it; required there).
fn s3_server() -> Option<Server> {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let child = Command::new(python())
        .args(["-m", "moto.server", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(
            std::env::var_os("AUGLOADER_REQUIRE_PYTHON").is_none(),
            "moto is required"
        );
        return None;
    };
    let server = Server { child, port };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        std::env::var_os("AUGLOADER_REQUIRE_PYTHON").is_none(),
        "moto did not start"
    );
    None
}

#[test]
fn s3_shards_give_the_local_batches() {
    let (d, out) = shards();
    let want = local(&out);
    let Some(server) = s3_server() else { return };
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    let upload = [
        "import boto3, glob, os, sys".to_string(),
        format!(
            "s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')"
        ),
        "s3.create_bucket(Bucket='data')".into(),
        "for p in glob.glob(os.path.join(sys.argv[1], '*')):".into(),
        "    s3.upload_file(p, 'data', 'sets/' + os.path.basename(p))".into(),
    ]
    .join("\n");
    let up = Command::new(python())
        .args(["-c", &upload])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let cache = cache_flag(&d.path().join("cache"));
    let run = augloader()
        .args([
            "bench",
            "--epochs",
            "2",
            "--batch",
            "5",
            "--checksum",
            "--json",
        ])
        .args([
            "--size",
            "32",
            "--workers",
            "2",
            "--shuffle-window",
            "2",
            "--data",
        ])
        .arg(format!("s3://data/sets/{PATTERN}"))
        .args(&cache)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    let text = String::from_utf8_lossy(&run.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        v["checksum"].as_str().unwrap(),
        want,
        "s3 batches equal the local ones"
    );
}

#[test]
fn a_shard_changed_on_the_server_is_refused_then_indexed_again() {
    let (d, out) = shards();
    let server = http_server(&out, &[]);
    let url = format!("http://127.0.0.1:{}/{PATTERN}", server.port);
    let opts = |dir: &str| RemoteOptions {
        cache_dir: d.path().join(dir),
        ..RemoteOptions::default()
    };
    let first = TarShards::open_url_pattern(&url, opts("cache")).unwrap();
    assert!(first.read(0).is_ok());
    // The server's shard 0 is rewritten (one sample fewer: another size, another ETag) and the
    // cached copy is gone (evicted): the next fetch sees the change and refuses it.
    let shard = out.join("train-000000.tar");
    let other = out.join("train-000001.tar");
    std::fs::copy(&other, &shard).unwrap();
    for e in std::fs::read_dir(d.path().join("cache")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tar" || x == "json") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let e = first
        .read(0)
        .expect_err("a changed shard is never read")
        .to_string();
    assert!(
        e.contains("changed on the server") && e.contains("train-000000.tar"),
        "{e}"
    );
    // Opened again, it is indexed again (its .idx beside it no longer fits its size): shard 0
    // now holds shard 1's samples, so shard 1's are duplicates, named as such.
    let again = TarShards::open_url_pattern(&url, opts("cache")).unwrap();
    assert!(again.read(0).is_ok());
    let e = again
        .read(7)
        .expect_err("duplicate keys are named")
        .to_string();
    assert!(e.contains("duplicate key"), "{e}");
}
