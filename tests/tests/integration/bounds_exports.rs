//! Exports and zips stream (issue 15, finding 4), against the real host process: `/export`
//! and `/tasks/export` answer page by page (chunked, every page, init images included, a
//! filter selection whatever its size), and `/tasks/zip` and `?zip=true` are written as they
//! are sent: nothing is written into the results folder (no temporary zip).

use std::io::Read;

use base64::Engine;
use fake_sdnext::{FakeConfigPatch, Fault, FaultRule};
use scheduler_api::{
    ExportItem, ListName, Selection, SelectionFilter, TaskStatus, TaskType, routes,
};
use scheduler_tests::harness::wait_task_status;
use serde_json::{Value, json};

use crate::host_support::*;

/// A PNG of noise (it does not compress): about `side`² × 3 bytes.
fn noise_png(side: u32, seed: u32) -> String {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(out.into_inner())
    )
}

/// The host's open files under `dir` that are not there any more (a temporary file).
fn hidden_files_under(pid: u32, dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| {
                    l.starts_with(&dir)
                        && (l.ends_with(" (deleted)") || !std::path::Path::new(l).exists())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn exports_stream_every_page_with_init_images_and_selections_of_any_size() {
    let s = ProcessStack::start(FakeArgs::fast_a(), &["--start-paused"]).await;
    let c = s.client();
    // 12 img2img tasks with a 1.5 MB init image each (more than one page of bytes) among
    // 80 small ones (more than one page of rows).
    let mut expected: Vec<(String, Option<String>)> = Vec::new();
    for i in 0..92u32 {
        if i % 8 == 3 && expected.iter().filter(|(_, img)| img.is_some()).count() < 12 {
            let img = noise_png(700, i);
            let req = body(
                json!({"prompt": format!("big {i}"), "steps": 3, "init_images": [img.clone()]}),
            );
            let id = c
                .enqueue(TaskType::Img2img, &req)
                .await
                .expect("enqueue img2img")
                .task_id;
            expected.push((id, Some(img)));
        } else {
            expected.push((enqueue(c, &format!("small {i}"), json!({})).await, None));
        }
    }
    let url = format!("{}{}?limit=100000", s.host.url(), routes::EXPORT);
    let resp = reqwest::get(&url).await.expect("GET /export");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-length"),
        None,
        "the export is streamed, not built whole"
    );
    let items: Vec<ExportItem> = resp.json().await.expect("an export array");
    assert_eq!(items.len(), expected.len());
    for (item, (id, img)) in items.iter().zip(&expected) {
        assert_eq!(&item.id, id, "queue order");
        match img {
            Some(img) => assert_eq!(
                item.params["init_images"][0].as_str(),
                Some(img.as_str()),
                "the init image of {id}, whole"
            ),
            None => assert!(item.params.get("init_images").is_none()),
        }
    }
    // limit and offset across pages.
    let some = c.export(Some(70), Some(10)).await.expect("export 10..80");
    let ids: Vec<&str> = some.iter().map(|i| i.id.as_str()).collect();
    let want: Vec<&str> = expected[10..80].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, want);

    // A filter selection: every pending task but two, in queue order, images included.
    let except = vec![expected[0].0.clone(), expected[3].0.clone()];
    let sel = Selection {
        filter: Some(SelectionFilter {
            list: ListName::Queue,
            status: None,
            q: None,
        }),
        except: except.clone(),
        ..Selection::default()
    };
    let picked = c.export_selection(&sel).await.expect("export a selection");
    let want: Vec<&str> = expected
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| !except.iter().any(|e| e == id))
        .collect();
    assert_eq!(
        picked.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        want
    );
    let with_image = picked
        .iter()
        .filter(|i| {
            i.params["init_images"][0]
                .as_str()
                .is_some_and(|s| s.len() > 1_000_000)
        })
        .count();
    assert_eq!(with_image, 11, "every selected init image, whole");
    // Ids, in their own order.
    let ids = Selection::ids([expected[50].0.clone(), expected[11].0.clone()]);
    let two = c.export_selection(&ids).await.expect("export two");
    assert_eq!(
        two.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [expected[50].0.as_str(), expected[11].0.as_str()]
    );
}

#[tokio::test]
async fn zips_are_streamed_and_write_nothing_into_the_results_folder() {
    let s = ProcessStack::start(FakeArgs::fast_a(), &[]).await;
    let c = s.client();
    // Results of 6 MiB each (the fake's huge answer: base64 of zeros, kept as `0.bin`).
    s.fake
        .configure(&FakeConfigPatch {
            faults: Some(vec![FaultRule::poison("big", Fault::HugeAnswer { mib: 8 })]),
            ..FakeConfigPatch::default()
        })
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(enqueue(c, "big", json!({"seed": i})).await);
    }
    for id in &ids {
        wait_task_status(c, id, TaskStatus::Done, LONG).await;
    }
    let results = s.dir.path().join("results");
    let pid = s.host.server.pid().expect("pid");
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut all: Vec<String> = walk(dir);
        all.sort();
        all
    };
    let before = listing(&results);

    // A history selection's zip, taken slowly: the host is mid-way when we look.
    let sel = Selection {
        filter: Some(SelectionFilter {
            list: ListName::History,
            status: None,
            q: None,
        }),
        ..Selection::default()
    };
    let http = reqwest::Client::new();
    let mut resp = http
        .post(format!("{}{}", s.host.url(), routes::TASKS_ZIP))
        .json(&sel)
        .send()
        .await
        .expect("POST /tasks/zip");
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.expect("a first piece").expect("bytes");
    assert_eq!(&first[..4], b"PK\x03\x04");
    assert_eq!(
        hidden_files_under(pid, &results),
        Vec::<String>::new(),
        "no temporary file in the results folder while the zip is sent"
    );
    assert_eq!(
        listing(&results),
        before,
        "nothing new in the results folder"
    );
    let mut zip = first.to_vec();
    while let Some(more) = resp.chunk().await.expect("the rest") {
        zip.extend_from_slice(&more);
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a whole zip");
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    let mut want: Vec<String> = ids.iter().map(|id| format!("{id}/0.bin")).collect();
    want.sort();
    assert_eq!(names, want);
    let mut data = Vec::new();
    archive
        .by_name(&want[0])
        .expect("an entry")
        .read_to_end(&mut data)
        .expect("its bytes, CRC checked");
    assert_eq!(data.len(), 6 << 20);
    assert!(data.iter().all(|b| *b == 0));

    // One task's zip likewise.
    let mut resp = http
        .get(format!(
            "{}{}?zip=true",
            s.host.url(),
            routes::task_path(routes::TASK_RESULTS, &ids[0])
        ))
        .send()
        .await
        .expect("GET results zip");
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.expect("a first piece").expect("bytes");
    assert_eq!(hidden_files_under(pid, &results), Vec::<String>::new());
    let mut zip = first.to_vec();
    while let Some(more) = resp.chunk().await.expect("the rest") {
        zip.extend_from_slice(&more);
    }
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a whole zip");
    assert_eq!(archive.file_names().collect::<Vec<_>>(), ["0.bin"]);
    assert_eq!(listing(&results), before);

    // Nothing to zip is still a 409.
    pause(c).await;
    let pending = Selection::ids([enqueue(c, "later", json!({})).await]);
    let r = http
        .post(format!("{}{}", s.host.url(), routes::TASKS_ZIP))
        .json(&pending)
        .send()
        .await
        .expect("POST /tasks/zip");
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["message"], "None of the selected tasks has result files");
}

/// Every file under `dir`, relative.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}
