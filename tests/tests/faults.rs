//! Server faults during a restore — 503 SlowDown, 500 InternalError,
//! connections reset in the middle of an upload, slow answers — injected
//! by a proxy in front of the S3 test server, for the s3cmd and aws
//! plugins. A restore either completes correctly or fails with one clear
//! line; either way no object that existed before and is in the backup is
//! missing afterwards, and a re-run without faults converges.

use std::collections::BTreeMap;

use stowage::config::{Component, Settings};
use stowage::fetch::ArchiveSource;
use stowage::restore::{run_restore, RestoreRequest};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::restore_scenarios::backup_quietly;
use stowage_conformance::{s3_test_endpoint, s3_tool_harness};
use stowage_core::Location;
use stowage_test_proxy::{FaultConfig, Proxy};

/// The fault mixes tried, each with its own seed.
fn fault_mixes() -> Vec<(&'static str, FaultConfig)> {
    let mix = |seed, slowdown, internal_error, reset_upload, delay_ms| FaultConfig {
        seed,
        slowdown,
        internal_error,
        reset_upload,
        delay_ms,
        ..FaultConfig::default()
    };
    vec![
        (
            "503 SlowDown on 15% of requests",
            mix(11, 0.15, 0.0, 0.0, 0),
        ),
        (
            "500 InternalError on 10% of requests",
            mix(12, 0.0, 0.10, 0.0, 0),
        ),
        (
            "uploads reset mid-body 20% of the time",
            mix(13, 0.0, 0.0, 0.20, 0),
        ),
        ("everything at once, slowly", mix(14, 0.05, 0.05, 0.10, 30)),
        ("every request failing", mix(15, 0.5, 0.5, 0.0, 0)),
    ]
}

fn restore_request(timestamp: u64) -> RestoreRequest {
    RestoreRequest {
        yes: true,
        quiet: true,
        break_lock: true,
        ..RestoreRequest::new(ArchiveSource::Timestamp(timestamp))
    }
}

fn restores_survive_server_faults(plugin: &str) {
    let Some(proxy) = s3_test_endpoint().map(|e| Proxy::start(&e).expect("the proxy starts"))
    else {
        return;
    };
    let Some(h) = s3_tool_harness(plugin, &proxy.url(), "") else {
        return;
    };
    let registry = h.registry().unwrap();
    let uploads = h.bucket("faults-uploads").unwrap();
    let backups = h.bucket("faults-backups").unwrap();
    let tmp = h.missing_bucket("faults-tmp");
    let staging = tempfile::tempdir().unwrap();
    let tree = LocalTree::new().unwrap();
    for i in 0..30u64 {
        tree.write(
            &format!("@hashed/{:02}/object {i}.bin", i % 5),
            &content(i, 1_000 + 300 * i as usize),
        )
        .unwrap();
    }
    tree.write("big.bin", &content(99, 6 << 20)).unwrap();
    uploads.seed(tree.path()).unwrap();
    let settings = Settings {
        label: "stowage_gitlab".to_string(),
        destination: Location::parse(&backups.url()),
        tmp_bucket: Some(Location::parse(&tmp.url())),
        staging_dir: staging.path().to_path_buf(),
        components: vec![Component {
            name: "uploads".to_string(),
            bucket: Location::parse(&uploads.url()),
            excludes: Vec::new(),
        }],
    };
    let backup = backup_quietly(&settings, &registry).unwrap();
    let backed_up = uploads.contents().unwrap();

    for (round, (what, faults)) in fault_mixes().into_iter().enumerate() {
        let drift = LocalTree::new().unwrap();
        for i in [2u64, 7, 19] {
            drift
                .write(
                    &format!("@hashed/{:02}/object {i}.bin", i % 5),
                    &content(1000 + 10 * round as u64 + i, 1_000 + 300 * i as usize),
                )
                .unwrap();
        }
        drift
            .write(&format!("added {round}.bin"), b"added")
            .unwrap();
        drift
            .write("big.bin", &content(2000 + round as u64, 6 << 20))
            .unwrap();
        uploads.seed(drift.path()).unwrap();
        let before: BTreeMap<String, String> = uploads.contents().unwrap();

        proxy.set_faults(faults).unwrap();
        let outcome = run_restore(
            &settings,
            &registry,
            &restore_request(backup.information.created_at),
            &|_| Ok(true),
        );
        proxy.set_faults(FaultConfig::default()).unwrap();
        let injected = proxy.stats().faults;
        match &outcome {
            Ok(report) if report.succeeded() => {
                assert_eq!(
                    uploads.contents().unwrap(),
                    backed_up,
                    "{plugin}, {what}: a restore that succeeded left the bucket wrong"
                );
            }
            Ok(report) => {
                for c in &report.components {
                    let error = c.error.as_deref().unwrap_or_default();
                    assert!(
                        !error.contains('\n'),
                        "{plugin}, {what}: multi-line error: {error}"
                    );
                }
            }
            Err(error) => assert!(
                !format!("{error:#}").contains('\n'),
                "{plugin}, {what}: multi-line error: {error:#}"
            ),
        }
        let after = uploads.contents().unwrap();
        for key in before.keys().filter(|k| backed_up.contains_key(*k)) {
            assert!(
                after.contains_key(key),
                "{plugin}, {what}: {key} existed before and is in the backup, but is gone"
            );
        }
        eprintln!(
            "{plugin}, {what}: {} ({injected:?} injected)",
            match &outcome {
                Ok(r) if r.succeeded() => "completed".to_string(),
                Ok(r) => format!("failed: {:?}", r.components[0].error),
                Err(e) => format!("failed: {e:#}"),
            }
        );

        let rerun = run_restore(
            &settings,
            &registry,
            &restore_request(backup.information.created_at),
            &|_| Ok(true),
        )
        .unwrap();
        assert!(
            rerun.succeeded(),
            "{plugin}, {what}: the re-run without faults failed: {:?}",
            rerun.components[0].error
        );
        assert_eq!(
            uploads.contents().unwrap(),
            backed_up,
            "{plugin}, {what}: the re-run did not converge"
        );
    }
}

#[test]
fn s3cmd_restores_survive_server_faults() {
    restores_survive_server_faults("s3cmd");
}

#[test]
fn aws_restores_survive_server_faults() {
    restores_survive_server_faults("aws");
}
