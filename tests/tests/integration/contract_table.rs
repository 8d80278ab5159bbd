//! The committed request-contract table (`host/src/model/contract/sdnext-requests.txt`) is
//! what its generator makes of SD.Next's recorded `/openapi.json`: re-generated here and
//! compared, so a stale or hand-edited table fails. `REGENERATE=1` rewrites it.
//! Without `../shared` the check cannot run: it fails under `CI=true` and is skipped with a
//! message elsewhere (a fresh clone still builds and validates: the table is committed).

use agent_scheduler::model::contract::{self, Schema};
use scheduler_api::TaskType;
use scheduler_tests::fixtures::{shared_dir, workspace_root};
use serde_json::Value;

fn recorded_openapi() -> Option<Value> {
    let path = shared_dir().join("fixtures/sdnext/api/openapi.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("openapi.json is JSON")),
        Err(e) => {
            let msg = format!(
                "{} is not readable ({e}): the project's shared/ folder belongs beside the repository, as ../shared",
                path.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("missing prerequisite in CI: {msg}");
            }
            eprintln!("SKIPPED contract_table: {msg}");
            None
        }
    }
}

#[test]
fn contract_table_is_what_the_generator_makes_of_sdnexts_openapi() {
    let Some(doc) = recorded_openapi() else {
        return;
    };
    let generated = contract::generate_table(&doc).expect("the generator reads the document");
    let path = workspace_root().join("host/src/model/contract/sdnext-requests.txt");
    if std::env::var("REGENERATE").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the table");
        eprintln!("rewrote {}", path.display());
    }
    let committed = std::fs::read_to_string(&path).expect("the committed table");
    assert!(
        committed == generated,
        "{} is stale: run REGENERATE=1 cargo test -p scheduler-tests --test integration contract_table, \
         then rebuild the host (it embeds the table)",
        path.display()
    );
    assert_eq!(
        committed,
        contract::TABLE,
        "the host embeds the committed table (rebuild after regenerating)"
    );
}

/// The table knows each task type's request model, the nested units, and the fields the
/// issue's examples name, with the types SD.Next declares.
#[test]
fn contract_table_has_each_task_types_model_and_the_nested_units() {
    let s = Schema::from_table(contract::TABLE).unwrap();
    let field = |kind: TaskType, name: &str| {
        let m = s.root(kind).unwrap_or_else(|| panic!("{kind:?} model"));
        m.field(name)
            .map(|f| contract::schema::ty_text(&f.ty))
            .unwrap_or_else(|| panic!("{kind:?}.{name}"))
    };
    assert_eq!(field(TaskType::Txt2img, "steps"), "int|null");
    assert_eq!(field(TaskType::Txt2img, "prompt"), "string|null");
    assert_eq!(field(TaskType::Txt2img, "cfg_scale"), "number|null");
    assert_eq!(
        field(TaskType::Txt2img, "ip_adapter"),
        "[@ItemIPAdapter]|null"
    );
    assert_eq!(field(TaskType::Img2img, "denoising_strength"), "number");
    assert_eq!(field(TaskType::Img2img, "face_id"), "@ItemFace|null");
    assert_eq!(field(TaskType::Control, "control"), "[@ItemControl]|null");
    assert_eq!(field(TaskType::Control, "batch_count"), "int");
    assert_eq!(field(TaskType::Control, "inputs"), "[never]|null");
    let unit = s.model("ItemControl").unwrap();
    assert_eq!(
        contract::schema::ty_text(&unit.field("strength").unwrap().ty),
        "number"
    );
    let ip = s.model("ItemIPAdapter").unwrap();
    assert_eq!(
        contract::schema::ty_text(&ip.field("scale").unwrap().ty),
        "number{>=0,<=1}"
    );
    assert!(
        s.model("ItemFace")
            .unwrap()
            .field("source_images")
            .unwrap()
            .required
    );
}
