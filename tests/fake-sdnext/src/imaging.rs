//! Tiny images for the fake: solid colours derived from the seed, encoded as SD.Next would
//! (JPEG without a text chunk, or PNG with a `parameters` tEXt chunk).

use std::io::Cursor;

/// An RGB colour derived from a seed, so tests can tell images apart.
fn colour(seed: u64) -> [u8; 3] {
    let x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    [(x >> 8) as u8, (x >> 24) as u8, (x >> 40) as u8]
}

fn pixels(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let c = colour(seed);
    let mut buf = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            // A small diagonal gradient so JPEG has something to encode.
            let d = ((x + y) % 16) as u8;
            buf.extend_from_slice(&[
                c[0].wrapping_add(d),
                c[1].wrapping_add(d),
                c[2].wrapping_add(d),
            ]);
        }
    }
    buf
}

/// A PNG with an optional `parameters` tEXt chunk.
pub(crate) fn png(width: u32, height: u32, seed: u64, parameters: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(p) = parameters {
            // tEXt is Latin-1; replace what does not fit (SD.Next writes iTXt then).
            let latin1: String = p
                .chars()
                .map(|c| {
                    if (c as u32) < 256 && c != '\0' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            let _ = enc.add_text_chunk("parameters".to_string(), latin1);
        }
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(&pixels(width, height, seed))
            .expect("png data");
    }
    out
}

/// A baseline JPEG (no infotext chunk; real SD.Next puts it in EXIF).
pub(crate) fn jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    enc.encode(
        &pixels(width, height, seed),
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )
    .expect("jpeg encode");
    out.into_inner()
}

/// A JPEG whose infotext sits in EXIF UserComment (`UNICODE\0` + UTF-16LE), the way SD.Next
/// writes a JPEG's infotext.
pub(crate) fn jpeg_with_user_comment(width: u32, height: u32, seed: u64, text: &str) -> Vec<u8> {
    let plain = jpeg(width, height, seed);
    let mut comment = b"UNICODE\0".to_vec();
    for u in text.encode_utf16() {
        comment.extend_from_slice(&u.to_le_bytes());
    }
    // TIFF (little-endian): IFD0 with the Exif IFD pointer, the Exif IFD with UserComment.
    let mut t: Vec<u8> = Vec::new();
    t.extend_from_slice(b"II");
    t.extend_from_slice(&42u16.to_le_bytes());
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x8769u16.to_le_bytes());
    t.extend_from_slice(&4u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&26u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x9286u16.to_le_bytes());
    t.extend_from_slice(&7u16.to_le_bytes());
    t.extend_from_slice(&(comment.len() as u32).to_le_bytes());
    t.extend_from_slice(&44u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&comment);
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(&t);
    let mut out = Vec::with_capacity(plain.len() + seg.len() + 4);
    out.extend_from_slice(&plain[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&seg);
    out.extend_from_slice(&plain[2..]);
    out
}

/// Reads a tEXt chunk `keyword` from a PNG (test helper, independent of the host's code).
pub fn decode_png_text(bytes: &[u8], keyword: &str) -> Option<String> {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let _ = reader.next_frame(&mut buf);
    let _ = reader.finish();
    let info = reader.info();
    info.uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == keyword)
        .map(|c| c.text.clone())
        .or_else(|| {
            info.utf8_text
                .iter()
                .find(|c| c.keyword == keyword)
                .and_then(|c| c.get_text().ok())
        })
}

/// Width and height of an encoded image (PNG or JPEG).
pub fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let img = image::load_from_memory(bytes).ok()?;
    Some((img.width(), img.height()))
}
