//! A zip written front to back, for answers streamed as they are made: stored entries (the
//! images are compressed already), each followed by a data descriptor (its CRC and size are
//! known only once it is written), ZIP64 records when the archive passes 4 GiB or 65,535
//! entries. Nothing is ever seeked or written twice, so the writer can be the response body;
//! it keeps only the central directory (a few dozen bytes per entry).

use std::io::{self, Read, Write};
use std::time::SystemTime;

/// Flags: sizes in a data descriptor (bit 3), UTF-8 names (bit 11).
const FLAGS: u16 = 0x0008 | 0x0800;
/// Version needed to extract: 2.0, or 4.5 with ZIP64 records.
const V20: u16 = 20;
const V45: u16 = 45;
/// Made by: Unix, spec 4.5 (so the external attributes are Unix modes).
const MADE_BY: u16 = (3 << 8) | 45;
/// A regular file, `rw-r--r--`, as Unix external attributes.
const FILE_MODE: u32 = 0o100_644 << 16;
/// The largest entry this writer stores (no ZIP64 sizes: result images are far smaller).
pub const MAX_ENTRY: u64 = 0xFFFF_FFFE;

/// One entry of the central directory.
struct Entry {
    name: String,
    crc: u32,
    size: u32,
    offset: u64,
    time: u16,
    date: u16,
}

/// A zip being written to `out`.
pub struct ZipStream<W: Write> {
    out: W,
    written: u64,
    entries: Vec<Entry>,
}

/// MS-DOS time and date of `t` (UTC; 1980-01-01 before 1980).
fn dos_time(t: SystemTime) -> (u16, u16) {
    let t = time::OffsetDateTime::from(t);
    if t.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | u16::from(t.second() / 2);
    let year = u16::try_from((t.year() - 1980).min(127)).unwrap_or(127);
    let date = (year << 9) | (u16::from(u8::from(t.month())) << 5) | u16::from(t.day());
    (time, date)
}

impl<W: Write> ZipStream<W> {
    /// A zip written to `out`.
    pub fn new(out: W) -> ZipStream<W> {
        ZipStream {
            out,
            written: 0,
            entries: Vec::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Adds the entry `name` with the bytes of `data` (read to its end, at most
    /// [`MAX_ENTRY`] bytes), modified at `modified`.
    pub fn add(&mut self, name: &str, mut data: impl Read, modified: SystemTime) -> io::Result<()> {
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "entry name too long"))?;
        let offset = self.written;
        let (time, date) = dos_time(modified);
        let mut head = Vec::with_capacity(30 + name.len());
        head.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        head.extend_from_slice(&V20.to_le_bytes());
        head.extend_from_slice(&FLAGS.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes()); // stored
        head.extend_from_slice(&time.to_le_bytes());
        head.extend_from_slice(&date.to_le_bytes());
        head.extend_from_slice(&[0; 12]); // CRC and sizes: in the descriptor
        head.extend_from_slice(&name_len.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes()); // no extra field
        head.extend_from_slice(name.as_bytes());
        self.put(&head)?;
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            size += n as u64;
            if size > MAX_ENTRY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "entry too large",
                ));
            }
            crc.update(&buf[..n]);
            self.put(&buf[..n])?;
        }
        let crc = crc.finalize();
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let mut desc = Vec::with_capacity(16);
        desc.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        desc.extend_from_slice(&crc.to_le_bytes());
        desc.extend_from_slice(&size.to_le_bytes());
        desc.extend_from_slice(&size.to_le_bytes());
        self.put(&desc)?;
        self.entries.push(Entry {
            name: name.to_owned(),
            crc,
            size,
            offset,
            time,
            date,
        });
        Ok(())
    }

    /// Entries written so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the central directory and the end records; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let entries = std::mem::take(&mut self.entries);
        let start = self.written;
        for e in &entries {
            let far = e.offset >= 0xFFFF_FFFF;
            let mut cd = Vec::with_capacity(46 + e.name.len() + 12);
            cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            cd.extend_from_slice(&MADE_BY.to_le_bytes());
            cd.extend_from_slice(&(if far { V45 } else { V20 }).to_le_bytes());
            cd.extend_from_slice(&FLAGS.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&e.time.to_le_bytes());
            cd.extend_from_slice(&e.date.to_le_bytes());
            cd.extend_from_slice(&e.crc.to_le_bytes());
            cd.extend_from_slice(&e.size.to_le_bytes());
            cd.extend_from_slice(&e.size.to_le_bytes());
            cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&(if far { 12u16 } else { 0 }).to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // comment
            cd.extend_from_slice(&0u16.to_le_bytes()); // disk
            cd.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            cd.extend_from_slice(&FILE_MODE.to_le_bytes());
            let off32 = if far { 0xFFFF_FFFF } else { e.offset as u32 };
            cd.extend_from_slice(&off32.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
            if far {
                // ZIP64 extended information: only the offset.
                cd.extend_from_slice(&1u16.to_le_bytes());
                cd.extend_from_slice(&8u16.to_le_bytes());
                cd.extend_from_slice(&e.offset.to_le_bytes());
            }
            self.put(&cd)?;
        }
        let cd_size = self.written - start;
        let count = entries.len() as u64;
        let zip64 = count >= 0xFFFF || start >= 0xFFFF_FFFF || cd_size >= 0xFFFF_FFFF;
        if zip64 {
            let eocd64 = self.written;
            let mut r = Vec::with_capacity(56 + 20);
            r.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            r.extend_from_slice(&44u64.to_le_bytes());
            r.extend_from_slice(&MADE_BY.to_le_bytes());
            r.extend_from_slice(&V45.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&cd_size.to_le_bytes());
            r.extend_from_slice(&start.to_le_bytes());
            // The locator.
            r.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&eocd64.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.put(&r)?;
        }
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        let n16 = if zip64 { 0xFFFF } else { count as u16 };
        end.extend_from_slice(&n16.to_le_bytes());
        end.extend_from_slice(&n16.to_le_bytes());
        let size32 = if zip64 { 0xFFFF_FFFF } else { cd_size as u32 };
        let start32 = if zip64 { 0xFFFF_FFFF } else { start as u32 };
        end.extend_from_slice(&size32.to_le_bytes());
        end.extend_from_slice(&start32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_back(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).expect("an entry");
                let mut data = Vec::new();
                f.read_to_end(&mut data).expect("its bytes, CRC checked");
                (f.name().to_owned(), data)
            })
            .collect()
    }

    #[test]
    fn a_streamed_zip_reads_back_with_names_bytes_and_crcs() {
        let mut z = ZipStream::new(Vec::new());
        let now = SystemTime::now();
        z.add("t1/0.png", &b"first image"[..], now).unwrap();
        z.add("t1/1.jpg", &[][..], now).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        z.add("t2/0.png", &big[..], SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(z.len(), 3);
        let out = z.finish().unwrap();
        let got = read_back(out);
        assert_eq!(
            got,
            vec![
                ("t1/0.png".to_owned(), b"first image".to_vec()),
                ("t1/1.jpg".to_owned(), Vec::new()),
                ("t2/0.png".to_owned(), big),
            ]
        );
    }

    #[test]
    fn many_entries_get_zip64_end_records() {
        let mut z = ZipStream::new(Vec::new());
        for i in 0..70_000u32 {
            z.add(
                &format!("{i}"),
                &i.to_le_bytes()[..],
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        }
        let out = z.finish().unwrap();
        let mut a = zip::ZipArchive::new(Cursor::new(out)).expect("a ZIP64 zip");
        assert_eq!(a.len(), 70_000);
        let mut last = Vec::new();
        a.by_name("69999").unwrap().read_to_end(&mut last).unwrap();
        assert_eq!(last, 69_999u32.to_le_bytes());
    }

    #[test]
    fn dos_dates() {
        let t = time::macros::datetime!(2026-12-07 16:05:09 UTC);
        let (time, date) = dos_time(t.into());
        assert_eq!(time, (16 << 11) | (5 << 5) | 4);
        assert_eq!(date, (46 << 9) | (12 << 5) | 7);
    }
}
