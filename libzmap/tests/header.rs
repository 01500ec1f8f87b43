//! The committed include/zmap.h must be what build.rs generates now.

#[test]
fn committed_header_is_fresh() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/zmap.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../include/zmap.h"))
            .expect("include/zmap.h is missing");
    assert!(
        generated == committed,
        "include/zmap.h is stale: run `ZMAP_UPDATE_HEADER=1 cargo build` and commit it"
    );
}
