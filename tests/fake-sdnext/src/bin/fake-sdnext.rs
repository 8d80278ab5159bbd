//! `fake-sdnext`: the fake SD.Next as a stand-alone server for demos, benchmarks and the
//! process-level tests (outage, restart).
//!
//! ```text
//! fake-sdnext --listen 127.0.0.1:0 --step-ms 20 --checkpoint a --checkpoint b \
//!             [--vae v] [--loaded a | --no-model] [--auth user:pass] [--load-ms N] [--lose-first-interrupt]
//!             [--limits SIDE,STEPS,IMAGES]
//! ```
//! The first stdout line is `listening on http://ADDR`.

use fake_sdnext::{FakeConfig, FakeSdNext, USAGE};
use std::io::Write;

fn parse_args() -> Result<FakeConfig, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    FakeConfig::from_args(args)
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
    // The fake binds with SO_REUSEADDR, so a restart can re-bind the same port.
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
