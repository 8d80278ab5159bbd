//! The fake SD.Next's options, typed: [`FakeArgs`] builds the words the `fake-sdnext` binary
//! takes (`--step-ms 1 --checkpoint a --loaded a`), so one set-up serves a fake process
//! ([`crate::harness::FakeProcess::spawn`]) and an in-process fake
//! ([`crate::inprocess::fake_with_args`]); both read them with the fake's one parser
//! (`FakeConfig::from_args`), so a test moved between the two keeps its set-up.
//!
//! A list of the binary's words converts too (`&["--step-ms", "1"]`), for set-ups written
//! before the builder and for an option it has no method for yet.

use std::path::Path;

use fake_sdnext::FakeConfig;

/// The options of one fake SD.Next, in the binary's words. Without any: checkpoints `a` and
/// `b`, `a` loaded, the fake's default pace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeArgs {
    words: Vec<String>,
}

impl FakeArgs {
    /// No option (the fake's defaults).
    pub fn new() -> FakeArgs {
        FakeArgs::default()
    }

    /// The tests' usual fake: one checkpoint `a`, loaded, 1 ms per step.
    pub fn fast_a() -> FakeArgs {
        FakeArgs::new().step_ms(1).checkpoint("a").loaded("a")
    }

    fn with(mut self, words: &[&str]) -> FakeArgs {
        self.words.extend(words.iter().map(|w| (*w).to_owned()));
        self
    }

    /// Milliseconds per sampling step (`--step-ms`).
    pub fn step_ms(self, ms: u64) -> FakeArgs {
        self.with(&["--step-ms", &ms.to_string()])
    }

    /// Milliseconds a checkpoint load takes (`--load-ms`).
    pub fn load_ms(self, ms: u64) -> FakeArgs {
        self.with(&["--load-ms", &ms.to_string()])
    }

    /// One more listed checkpoint (`--checkpoint`; the first one given is loaded unless
    /// [`Self::loaded`] or [`Self::no_model`] says otherwise).
    pub fn checkpoint(self, title: &str) -> FakeArgs {
        self.with(&["--checkpoint", title])
    }

    /// [`Self::checkpoint`] for each title, in order.
    pub fn checkpoints(self, titles: &[&str]) -> FakeArgs {
        titles.iter().fold(self, |a, t| a.checkpoint(t))
    }

    /// One more listed VAE (`--vae`).
    pub fn vae(self, name: &str) -> FakeArgs {
        self.with(&["--vae", name])
    }

    /// The checkpoint loaded at start (`--loaded`).
    pub fn loaded(self, title: &str) -> FakeArgs {
        self.with(&["--loaded", title])
    }

    /// No checkpoint loaded at start (`--no-model`).
    pub fn no_model(self) -> FakeArgs {
        self.with(&["--no-model"])
    }

    /// Basic auth required on every request (`--auth USER:PASS`).
    pub fn auth(self, user: &str, password: &str) -> FakeArgs {
        self.with(&["--auth", &format!("{user}:{password}")])
    }

    /// The first `/sdapi/v1/interrupt` is answered but does nothing
    /// (`--lose-first-interrupt`).
    pub fn lose_first_interrupt(self) -> FakeArgs {
        self.with(&["--lose-first-interrupt"])
    }

    /// SD.Next's bounds a request must meet (`--limits SIDE,STEPS,IMAGES`).
    pub fn limits(self, max_side: i64, max_steps: i64, max_images: i64) -> FakeArgs {
        self.with(&["--limits", &format!("{max_side},{max_steps},{max_images}")])
    }

    /// The `/openapi.json` it serves, read from `file` (`--openapi`).
    pub fn openapi(self, file: impl AsRef<Path>) -> FakeArgs {
        let file = file.as_ref().to_string_lossy().into_owned();
        self.with(&["--openapi", &file])
    }

    /// The binary's words (without `--listen`, which the harness adds).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The in-process fake's configuration, read from the words by the binary's own parser;
    /// words it refuses fail the test.
    pub fn config(&self) -> FakeConfig {
        FakeConfig::from_args(&self.words)
            .unwrap_or_else(|e| panic!("fake-sdnext options {:?}: {e}", self.words))
    }
}

impl From<&[&str]> for FakeArgs {
    fn from(words: &[&str]) -> FakeArgs {
        FakeArgs::new().with(words)
    }
}

impl<const N: usize> From<&[&str; N]> for FakeArgs {
    fn from(words: &[&str; N]) -> FakeArgs {
        FakeArgs::new().with(words)
    }
}

impl From<&FakeArgs> for FakeArgs {
    fn from(args: &FakeArgs) -> FakeArgs {
        args.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_writes_the_binary_s_words_and_the_fake_reads_them() {
        let a = FakeArgs::new()
            .step_ms(5)
            .load_ms(7)
            .checkpoints(&["a", "b"])
            .loaded("b")
            .vae("v1")
            .auth("u", "p")
            .lose_first_interrupt()
            .limits(512, 50, 4);
        assert_eq!(
            a.words(),
            [
                "--step-ms",
                "5",
                "--load-ms",
                "7",
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
            ]
        );
        let c = a.config();
        assert_eq!(
            (
                c.step_ms,
                c.load_ms,
                c.checkpoints,
                c.loaded,
                c.vaes,
                c.auth
            ),
            (
                5,
                7,
                vec!["a".to_owned(), "b".to_owned()],
                Some("b".to_owned()),
                vec!["v1".to_owned()],
                Some(("u".to_owned(), "p".to_owned()))
            )
        );
        assert!(c.lose_first_interrupt);
        assert_eq!(
            FakeArgs::new().checkpoint("x").no_model().config().loaded,
            None
        );
    }

    #[test]
    fn the_old_word_lists_convert_unchanged() {
        let words: &[&str] = &["--step-ms", "1", "--checkpoint", "a", "--loaded", "a"];
        assert_eq!(FakeArgs::from(words), FakeArgs::fast_a());
        assert_eq!(
            FakeArgs::from(&["--step-ms", "1", "--checkpoint", "a", "--loaded", "a"]),
            FakeArgs::fast_a()
        );
        assert_eq!(FakeArgs::from(&[]), FakeArgs::new());
    }
}
