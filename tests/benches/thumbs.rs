//! The thumbnail figures of issue 10: for result images of several sizes (PNG noise, the
//! worst case for a decoder and an encoder, and a photo-like JPEG), the time to make one
//! thumbnail with the host's own function (`results::thumbs::make`: decode, shrink to at
//! most 256 px, JPEG q80) and the thumbnail's size in bytes. The median of several runs.
//!
//! Run: `cargo bench -p scheduler-tests --bench thumbs`

use std::io::Cursor;
use std::time::Instant;

use agent_scheduler::results::files::thumb_name;
use agent_scheduler::results::thumbs;
use image::{ImageFormat, Rgb, RgbImage};

/// A deterministic image: smooth gradients (`noise` false) or per-pixel noise.
fn picture(w: u32, h: u32, noise: bool) -> RgbImage {
    let mut state: u32 = 0x9E37_79B9;
    RgbImage::from_fn(w, h, |x, y| {
        if noise {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let b = state.to_le_bytes();
            Rgb([b[0], b[1], b[2]])
        } else {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        }
    })
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("512x512 PNG noise", 512, 512, true, ImageFormat::Png),
        ("1024x1024 PNG noise", 1024, 1024, true, ImageFormat::Png),
        (
            "1024x1536 JPEG gradient",
            1024,
            1536,
            false,
            ImageFormat::Jpeg,
        ),
        ("2048x2048 PNG noise", 2048, 2048, true, ImageFormat::Png),
        (
            "4096x4096 PNG gradient",
            4096,
            4096,
            false,
            ImageFormat::Png,
        ),
    ];
    println!("case | source bytes | thumbnail bytes | median ms (runs)");
    for (name, w, h, noise, format) in cases {
        let mut bytes = Vec::new();
        picture(w, h, noise)
            .write_to(&mut Cursor::new(&mut bytes), format)
            .expect("encode");
        let ext = if format == ImageFormat::Png {
            "png"
        } else {
            "jpg"
        };
        let src = dir.path().join(format!("0.{ext}"));
        std::fs::write(&src, &bytes).expect("write");
        let dst = dir.path().join(thumb_name(&format!("0.{ext}")));
        let runs = if w * h > 4_000_000 { 3 } else { 7 };
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                thumbs::make(&src, &dst).expect("thumbnail");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let size = std::fs::metadata(&dst).expect("thumbnail").len();
        println!(
            "{name} | {} | {size} | {:.1} ({runs})",
            bytes.len(),
            ms[runs / 2]
        );
    }
}
