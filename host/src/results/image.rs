//! Image helpers for results: format sniffing and the PNG `parameters` text chunk (the
//! infotext SD.Next and other tools read back).
//!
//! A PNG keeps its pixel data byte for byte: only text chunks named `parameters` are removed
//! and one new chunk is inserted right after `IHDR`. JPEG (and WebP, when the `image` crate
//! is built with its `webp` feature) is decoded and re-encoded as PNG.

use std::io::Cursor;

const PNG_MAGIC: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const KEYWORD: &str = "parameters";

/// Errors of the image helpers.
#[derive(thiserror::Error, Debug)]
pub enum ImageError {
    /// The bytes are not an image format we can read.
    #[error("unsupported image format ({0})")]
    Unsupported(&'static str),
    /// The PNG chunk structure is broken.
    #[error("malformed PNG: {0}")]
    MalformedPng(String),
    /// Decoding or encoding failed.
    #[error("image codec error: {0}")]
    Codec(String),
}

/// The file extension for the bytes, by magic number: `png`, `jpg`, `webp` or `bin`.
pub fn image_ext(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(PNG_MAGIC) {
        "png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "webp"
    } else {
        "bin"
    }
}

/// Returns a PNG carrying `infotext` as its `parameters` text chunk (tEXt when the text is
/// Latin-1, iTXt otherwise). PNG input keeps its pixels; JPEG/WebP input is re-encoded.
pub fn to_png_with_parameters(bytes: &[u8], infotext: &str) -> Result<Vec<u8>, ImageError> {
    let png = match image_ext(bytes) {
        "png" => std::borrow::Cow::Borrowed(bytes),
        "jpg" | "webp" => std::borrow::Cow::Owned(reencode_png(bytes)?),
        _ => return Err(ImageError::Unsupported("not PNG, JPEG or WebP")),
    };
    let chunks = split_chunks(&png)?;
    let mut out = Vec::with_capacity(png.len() + infotext.len() + 64);
    out.extend_from_slice(PNG_MAGIC);
    let text_chunk = parameters_chunk(infotext);
    let mut inserted = false;
    for c in &chunks {
        if is_parameters_text(c) {
            continue;
        }
        write_chunk(&mut out, c.kind, c.data);
        if c.kind == *b"IHDR" && !inserted {
            write_chunk(&mut out, text_chunk.0, &text_chunk.1);
            inserted = true;
        }
    }
    if !inserted {
        return Err(ImageError::MalformedPng("no IHDR chunk".into()));
    }
    Ok(out)
}

/// Reads the `parameters` text (tEXt, or uncompressed iTXt) from a PNG.
pub fn read_png_parameters(bytes: &[u8]) -> Option<String> {
    let chunks = split_chunks(bytes).ok()?;
    for c in chunks {
        match &c.kind {
            b"tEXt" => {
                let (k, text) = split_nul(c.data)?;
                if k == KEYWORD.as_bytes() {
                    return Some(text.iter().map(|&b| b as char).collect());
                }
            }
            b"iTXt" => {
                let (k, rest) = split_nul(c.data)?;
                if k != KEYWORD.as_bytes() || rest.len() < 2 {
                    continue;
                }
                if rest[0] != 0 {
                    // Compressed iTXt: not written by us or SD.Next.
                    continue;
                }
                let (_lang, rest) = split_nul(&rest[2..])?;
                let (_translated, text) = split_nul(rest)?;
                return String::from_utf8(text.to_vec()).ok();
            }
            _ => {}
        }
    }
    None
}

fn reencode_png(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let img = image::load_from_memory(bytes).map_err(|e| ImageError::Codec(e.to_string()))?;
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ImageError::Codec(e.to_string()))?;
    Ok(out.into_inner())
}

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
}

fn split_chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, ImageError> {
    if !bytes.starts_with(PNG_MAGIC) {
        return Err(ImageError::MalformedPng("no PNG signature".into()));
    }
    let mut chunks = Vec::new();
    let mut pos = PNG_MAGIC.len();
    while pos < bytes.len() {
        if pos + 12 > bytes.len() {
            return Err(ImageError::MalformedPng("truncated chunk header".into()));
        }
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let kind: [u8; 4] = bytes[pos + 4..pos + 8].try_into().expect("4 bytes");
        let end = pos
            .checked_add(12)
            .and_then(|p| p.checked_add(len))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| ImageError::MalformedPng("chunk runs past the end".into()))?;
        chunks.push(Chunk {
            kind,
            data: &bytes[pos + 8..pos + 8 + len],
        });
        pos = end;
        if kind == *b"IEND" {
            break;
        }
    }
    if chunks.first().map(|c| c.kind) != Some(*b"IHDR") {
        return Err(ImageError::MalformedPng("first chunk is not IHDR".into()));
    }
    Ok(chunks)
}

fn split_nul(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = data.iter().position(|&b| b == 0)?;
    Some((&data[..i], &data[i + 1..]))
}

fn is_parameters_text(c: &Chunk<'_>) -> bool {
    matches!(&c.kind, b"tEXt" | b"iTXt" | b"zTXt")
        && split_nul(c.data).is_some_and(|(k, _)| k == KEYWORD.as_bytes())
}

/// tEXt (Latin-1) when every char fits, else iTXt (UTF-8, uncompressed). NULs are dropped.
fn parameters_chunk(text: &str) -> ([u8; 4], Vec<u8>) {
    let text: String = text.chars().filter(|&c| c != '\0').collect();
    let mut data = Vec::with_capacity(KEYWORD.len() + text.len() + 8);
    data.extend_from_slice(KEYWORD.as_bytes());
    data.push(0);
    if text.chars().all(|c| (c as u32) < 256) {
        data.extend(text.chars().map(|c| c as u32 as u8));
        (*b"tEXt", data)
    } else {
        // compression flag 0, method 0, empty language tag, empty translated keyword
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(text.as_bytes());
        (*b"iTXt", data)
    }
}

fn write_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    let mut crc = crc32_update(0xFFFF_FFFF, &kind);
    crc = crc32_update(crc, data);
    out.extend_from_slice(&(crc ^ 0xFFFF_FFFF).to_be_bytes());
}

/// CRC-32 (IEEE, reflected) as PNG uses it.
fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_image(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, 99]))
    }

    fn encode(img: &image::RgbImage, fmt: image::ImageFormat) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        img.write_to(&mut c, fmt).unwrap();
        c.into_inner()
    }

    fn pixels(png: &[u8]) -> Vec<u8> {
        image::load_from_memory(png).unwrap().to_rgb8().into_raw()
    }

    #[test]
    fn crc_matches_known_value() {
        // CRC of "IEND" with no data is the well-known AE 42 60 82.
        assert_eq!(
            crc32_update(0xFFFF_FFFF, b"IEND") ^ 0xFFFF_FFFF,
            0xAE42_6082
        );
    }

    #[test]
    fn magic_bytes() {
        let img = rgb_image(4, 4);
        assert_eq!(image_ext(&encode(&img, image::ImageFormat::Png)), "png");
        assert_eq!(image_ext(&encode(&img, image::ImageFormat::Jpeg)), "jpg");
        assert_eq!(image_ext(b"RIFF\0\0\0\0WEBPVP8 "), "webp");
        assert_eq!(image_ext(b"hello"), "bin");
        assert_eq!(image_ext(b""), "bin");
    }

    #[test]
    fn png_keeps_pixels_and_replaces_parameters() {
        let src = encode(&rgb_image(16, 8), image::ImageFormat::Png);
        let first = to_png_with_parameters(&src, "a cat\nSteps: 20, Seed: 1").unwrap();
        assert_eq!(
            read_png_parameters(&first).as_deref(),
            Some("a cat\nSteps: 20, Seed: 1")
        );
        assert_eq!(pixels(&first), pixels(&src));
        let second = to_png_with_parameters(&first, "a dog").unwrap();
        assert_eq!(read_png_parameters(&second).as_deref(), Some("a dog"));
        let count = split_chunks(&second)
            .unwrap()
            .iter()
            .filter(|c| is_parameters_text(c))
            .count();
        assert_eq!(count, 1, "the old chunk is replaced, not duplicated");
        // The png crate accepts our chunks (CRCs included).
        let dec = png::Decoder::new(Cursor::new(&second));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        assert_eq!(r.info().uncompressed_latin1_text[0].text, "a dog");
    }

    #[test]
    fn latin1_uses_text_and_others_use_itxt() {
        let src = encode(&rgb_image(4, 4), image::ImageFormat::Png);
        let latin = to_png_with_parameters(&src, "café").unwrap();
        assert_eq!(read_png_parameters(&latin).as_deref(), Some("café"));
        assert!(
            split_chunks(&latin)
                .unwrap()
                .iter()
                .any(|c| c.kind == *b"tEXt")
        );
        let utf = to_png_with_parameters(&src, "猫, Steps: 4").unwrap();
        assert_eq!(read_png_parameters(&utf).as_deref(), Some("猫, Steps: 4"));
        assert!(
            split_chunks(&utf)
                .unwrap()
                .iter()
                .any(|c| c.kind == *b"iTXt")
        );
        let dec = png::Decoder::new(Cursor::new(&utf));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        assert_eq!(r.info().utf8_text[0].get_text().unwrap(), "猫, Steps: 4");
    }

    #[test]
    fn jpeg_is_reencoded_as_png() {
        let img = rgb_image(24, 16);
        let jpg = encode(&img, image::ImageFormat::Jpeg);
        let out = to_png_with_parameters(&jpg, "from jpeg").unwrap();
        assert_eq!(image_ext(&out), "png");
        assert_eq!(read_png_parameters(&out).as_deref(), Some("from jpeg"));
        let decoded = image::load_from_memory(&out).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (24, 16));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            to_png_with_parameters(b"not an image", "x"),
            Err(ImageError::Unsupported(_))
        ));
        assert!(to_png_with_parameters(b"\x89PNG\r\n\x1a\n\0\0", "x").is_err());
        assert_eq!(read_png_parameters(b"nope"), None);
    }
}
