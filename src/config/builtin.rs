//! The shipped data built into the binary, so that a bare `simwatt` with no data directory still has
//! the power profiles, the engine profiles and the regions (with their hourly series and the
//! embodied-carbon table) that the repository ships.
//!
//! Input: the files below, read at compile time (`include_str!`). Output: each file's text under its
//! path relative to the data directory (`profiles/power/a100.yaml`). A file of the same path in a data
//! directory that a run finds wins over the built-in copy (see [`super::data::locate`]); which one a
//! run read is recorded in its `provenance.json`. The Vidur profile CSVs (megabytes per device) and
//! the traces are not built in. It reads no files at run time and imports nothing but the foundation.
//!
//! Sizes, for the record: the power and engine profiles and the region files are about 67 kB of
//! YAML; the hourly carbon and price series are 2.7 MB of CSV, small beside the binary, so they are
//! built in too and a bare binary gives the same hourly carbon as a checkout.

use std::path::Path;

/// One shipped file: its path relative to the data directory and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct File {
    pub rel: &'static str,
    pub text: &'static str,
}

macro_rules! shipped {
    ($($rel:literal),* $(,)?) => {
        &[$(File { rel: $rel, text: include_str!(concat!("../../", $rel)) }),*]
    };
}

/// Every built-in file, in path order. `tests::every_shipped_file_is_built_in` checks that the list
/// matches the folders it is taken from.
pub static FILES: &[File] = shipped![
    "profiles/engine/vllm-0.11.yaml",
    "profiles/engine/vllm-0.5.yaml",
    "profiles/power/a100-40gb.yaml",
    "profiles/power/a100.yaml",
    "profiles/power/a40.yaml",
    "profiles/power/b200.yaml",
    "profiles/power/h100-nvl.yaml",
    "profiles/power/h100-pcie.yaml",
    "profiles/power/h100.yaml",
    "profiles/power/h200.yaml",
    "profiles/power/i5-13600k.yaml",
    "profiles/power/i9-13900k.yaml",
    "profiles/power/jetson-agx-orin.yaml",
    "profiles/power/jetson-orin-nano-super.yaml",
    "profiles/power/l4.yaml",
    "profiles/power/l40s.yaml",
    "profiles/power/mi300x.yaml",
    "profiles/power/rtx2080ti.yaml",
    "profiles/power/rtx3060.yaml",
    "profiles/power/rtx3080ti.yaml",
    "profiles/power/rtx4070ti.yaml",
    "profiles/power/rtx4090.yaml",
    "profiles/power/rtxa4000.yaml",
    "regions/aws-ap-northeast-1.yaml",
    "regions/aws-ap-south-1.yaml",
    "regions/aws-ap-southeast-1.yaml",
    "regions/aws-ap-southeast-2.yaml",
    "regions/aws-ca-central-1.yaml",
    "regions/aws-eu-central-1.yaml",
    "regions/aws-eu-north-1.yaml",
    "regions/aws-eu-west-1.yaml",
    "regions/aws-sa-east-1.yaml",
    "regions/aws-us-east-1.yaml",
    "regions/aws-us-west-1.yaml",
    "regions/aws-us-west-2.yaml",
    "regions/azure-francecentral.yaml",
    "regions/azure-uksouth.yaml",
    "regions/embodied.yaml",
    "regions/gcp-europe-north1.yaml",
    "regions/gcp-europe-west4.yaml",
    "regions/gcp-us-central1.yaml",
    "regions/gcp-us-south1.yaml",
    "regions/hourly/AU-NSW_2024.csv",
    "regions/hourly/AU-NSW_price_2024.csv",
    "regions/hourly/BR-CS_2024.csv",
    "regions/hourly/DE_2024.csv",
    "regions/hourly/GB_2024.csv",
    "regions/hourly/IN-WE_2024.csv",
    "regions/hourly/JP-TK_2024.csv",
    "regions/hourly/SG_2024.csv",
    "regions/hourly/US-CAL-CISO_2024.csv",
    "regions/hourly/US-MIDA-PJM_2024.csv",
    "regions/hourly/US-TEX-ERCO_2024.csv",
];

/// The built-in file at `rel` (a path relative to the data directory, `/`-separated).
pub fn get(rel: &Path) -> Option<&'static File> {
    let rel = rel.to_str()?.replace('\\', "/");
    FILES.iter().find(|f| f.rel == rel)
}

/// Stems of the built-in files directly in folder `dir` (e.g. `regions`) whose name ends with `ext`.
pub fn stems(dir: &str, ext: &str) -> Vec<&'static str> {
    FILES
        .iter()
        .filter_map(|f| f.rel.strip_prefix(dir)?.strip_prefix('/'))
        .filter(|n| !n.contains('/'))
        .filter_map(|n| n.strip_suffix(ext))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The files of `dir` (relative to the source tree) ending with `ext`, as `dir/name`.
    fn listed(dir: &str, ext: &str) -> Vec<String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(ext))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_shipped_file_is_built_in() {
        let mut want: Vec<String> = [
            ("profiles/engine", ".yaml"),
            ("profiles/power", ".yaml"),
            ("regions", ".yaml"),
            ("regions/hourly", ".csv"),
        ]
        .iter()
        .flat_map(|(d, e)| listed(d, e))
        .collect();
        want.sort();
        let have: Vec<&str> = FILES.iter().map(|f| f.rel).collect();
        assert!(want.len() > 30, "{want:?}");
        assert_eq!(have, want);
    }

    #[test]
    fn every_built_in_profile_and_region_reads_and_checks() {
        // A folder that does not exist: every region and series comes from the binary.
        let nowhere = Path::new("/nonexistent-simwatt-data");
        let mut regions = 0;
        for f in FILES {
            let path = Path::new(f.rel);
            if let Some(name) = f.rel.strip_prefix("profiles/power/") {
                let p = crate::config::PowerProfile::parse(path, f.text).unwrap();
                assert_eq!(format!("{}.yaml", p.device), name);
            } else if f.rel.starts_with("profiles/engine/") {
                crate::config::EngineProfile::parse(path, f.text).unwrap();
            } else if let Some(id) = f
                .rel
                .strip_prefix("regions/")
                .and_then(|n| n.strip_suffix(".yaml"))
                .filter(|n| *n != "embodied")
            {
                let r = crate::config::region::load_region(nowhere, id).unwrap();
                assert_eq!(r.path, Path::new(&format!("built-in:{}", f.rel)));
                regions += 1;
            }
        }
        assert!(regions >= 18);
        let e = crate::config::region::load_embodied(nowhere, "a100", None).unwrap();
        assert!(e.is_some_and(|e| e.kgco2e_per_device > 0.0));
    }

    #[test]
    fn built_in_files_are_found_by_path_and_folder() {
        let a100 = get(Path::new("profiles/power/a100.yaml")).expect("a100 built in");
        assert!(a100.text.contains("device: a100"));
        assert!(get(Path::new("profiles/power/none.yaml")).is_none());
        let regions = stems("regions", ".yaml");
        assert!(regions.contains(&"aws-us-east-1") && regions.contains(&"embodied"));
        assert!(!regions.iter().any(|r| r.contains('/')));
        assert_eq!(stems("profiles/engine", ".yaml"), ["vllm-0.11", "vllm-0.5"]);
    }
}
