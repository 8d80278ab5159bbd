//! The fake's options as the `fake-sdnext` binary spells them (`--step-ms 20 --checkpoint a
//! …`), parsed once for both: the binary reads its command line with [`FakeConfig::from_args`]
//! and a test configures an in-process fake with the same words, so a test moved between a
//! process and the test's own process keeps its set-up unchanged. The tests write these
//! words with `scheduler_tests::fake_args::FakeArgs`, one method per option below.

use std::net::SocketAddr;

use crate::{FakeConfig, Limits};

/// The binary's usage line.
pub const USAGE: &str = "usage: fake-sdnext [--listen ADDR] [--step-ms N] [--load-ms N] \
[--checkpoint TITLE]... [--vae NAME]... [--loaded TITLE | --no-model] [--auth USER:PASS] [--lose-first-interrupt] \
[--limits SIDE,STEPS,IMAGES] [--openapi FILE]";

impl FakeConfig {
    /// Parses the binary's options (`--key value` or `--key=value`; `-h`/`--help` is the
    /// caller's). Without `--checkpoint` the fake lists `a` and `b`; without `--loaded` the
    /// first checkpoint is loaded (`--no-model`: none).
    pub fn from_args<I, S>(args: I) -> Result<FakeConfig, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cfg = FakeConfig {
            checkpoints: Vec::new(),
            loaded: None,
            ..FakeConfig::default()
        };
        let mut loaded_given = false;
        let mut no_model = false;
        let mut args = args.into_iter().map(|a| a.as_ref().to_owned());
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
                    cfg.openapi = Some(
                        serde_json::from_slice(&text).map_err(|e| format!("--openapi {f}: {e}"))?,
                    );
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
                    cfg.limits = Some(Limits {
                        max_side,
                        max_steps,
                        max_images,
                    });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_s_words_set_the_config() {
        let c = FakeConfig::from_args([
            "--step-ms",
            "5",
            "--load-ms=7",
            "--checkpoint",
            "a",
            "--checkpoint",
            "b",
            "--loaded",
            "b",
            "--vae",
            "v1",
            "--auth",
            "u:p",
            "--lose-first-interrupt",
            "--limits",
            "512,50,4",
        ])
        .expect("parses");
        assert_eq!(
            (c.step_ms, c.load_ms, c.checkpoints, c.loaded, c.vaes),
            (
                5,
                7,
                vec!["a".into(), "b".into()],
                Some("b".into()),
                vec!["v1".into()]
            )
        );
        assert_eq!(c.auth, Some(("u".into(), "p".into())));
        assert!(c.lose_first_interrupt);
        assert_eq!(
            c.limits,
            Some(Limits {
                max_side: 512,
                max_steps: 50,
                max_images: 4
            })
        );
    }

    #[test]
    fn defaults_and_refusals() {
        let c = FakeConfig::from_args(Vec::<String>::new()).expect("parses");
        assert_eq!(
            (c.checkpoints, c.loaded),
            (vec!["a".into(), "b".into()], Some("a".into()))
        );
        let c = FakeConfig::from_args(["--checkpoint", "x", "--no-model"]).expect("parses");
        assert_eq!(c.loaded, None);
        assert_eq!(
            FakeConfig::from_args(["--step-ms"]).unwrap_err(),
            "--step-ms needs a value"
        );
        assert_eq!(
            FakeConfig::from_args(["--frobnicate"]).unwrap_err(),
            format!("unknown argument --frobnicate\n{USAGE}")
        );
    }
}
