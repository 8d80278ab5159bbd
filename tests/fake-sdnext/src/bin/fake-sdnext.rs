//! `fake-sdnext`: the fake SD.Next as a stand-alone server for demos, benchmarks and the
//! process-level tests (outage, restart).
//!
//! ```text
//! fake-sdnext --listen 127.0.0.1:0 --step-ms 20 --checkpoint a --checkpoint b \
//!             [--vae v] [--loaded a | --no-model] [--auth user:pass] [--load-ms N] [--lose-first-interrupt]
//!             [--limits SIDE,STEPS,IMAGES] [--openapi FILE]
//! ```
//! The first stdout line is `listening on http://ADDR`.

use std::io::Write;
use std::net::SocketAddr;

use fake_sdnext::{FakeConfig, FakeSdNext};

const USAGE: &str = "usage: fake-sdnext [--listen ADDR] [--step-ms N] [--load-ms N] \
[--checkpoint TITLE]... [--vae NAME]... [--loaded TITLE | --no-model] [--auth USER:PASS] [--lose-first-interrupt] \
[--limits SIDE,STEPS,IMAGES] [--openapi FILE]";

fn parse_args() -> Result<FakeConfig, String> {
    let mut cfg = FakeConfig {
        checkpoints: Vec::new(),
        loaded: None,
        ..FakeConfig::default()
    };
    let mut loaded_given = false;
    let mut no_model = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                cfg.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--step-ms" => {
                cfg.step_ms = value("--step-ms")?
                    .parse()
                    .map_err(|e| format!("--step-ms: {e}"))?
            }
            "--load-ms" => {
                cfg.load_ms = value("--load-ms")?
                    .parse()
                    .map_err(|e| format!("--load-ms: {e}"))?
            }
            "--checkpoint" => cfg.checkpoints.push(value("--checkpoint")?),
            "--vae" => cfg.vaes.push(value("--vae")?),
            "--loaded" => {
                cfg.loaded = Some(value("--loaded")?);
                loaded_given = true;
            }
            "--no-model" => no_model = true,
            "--auth" => {
                let v = value("--auth")?;
                let (u, p) = v
                    .split_once(':')
                    .ok_or_else(|| "--auth needs USER:PASS".to_string())?;
                cfg.auth = Some((u.to_string(), p.to_string()));
            }
            "--lose-first-interrupt" => cfg.lose_first_interrupt = true,
            "--openapi" => {
                let f = value("--openapi")?;
                let text = std::fs::read(&f).map_err(|e| format!("--openapi {f}: {e}"))?;
                cfg.openapi =
                    Some(serde_json::from_slice(&text).map_err(|e| format!("--openapi {f}: {e}"))?);
            }
            "--limits" => {
                let v = value("--limits")?;
                let n: Vec<i64> = v
                    .split(',')
                    .map(|x| x.trim().parse::<i64>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--limits SIDE,STEPS,IMAGES: {e}"))?;
                let [max_side, max_steps, max_images] = n[..] else {
                    return Err("--limits needs SIDE,STEPS,IMAGES".into());
                };
                cfg.limits = Some(fake_sdnext::Limits {
                    max_side,
                    max_steps,
                    max_images,
                });
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if cfg.checkpoints.is_empty() {
        cfg.checkpoints = vec!["a".into(), "b".into()];
    }
    if !loaded_given && !no_model {
        cfg.loaded = cfg.checkpoints.first().cloned();
    }
    if no_model {
        cfg.loaded = None;
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-sdnext: {e}");
            std::process::exit(2);
        }
    };
    // std's TcpListener sets SO_REUSEADDR on Unix, so a restart can re-bind the same port.
    let handle = match FakeSdNext::start(cfg).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("fake-sdnext: bind failed: {e}");
            std::process::exit(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", handle.url());
        let _ = out.flush();
    }
    let _ = tokio::signal::ctrl_c().await;
    handle.stop().await;
}
