//! Server faults during a restore — 503 SlowDown, 500 InternalError,
//! connections reset in the middle of an upload, slow answers — injected
//! by a proxy in front of the S3 test server, for the s3cmd and aws
//! plugins. A restore either completes correctly or fails with one clear
//! line; either way no object that existed before and is in the backup is
//! missing afterwards, and a re-run without faults converges.

use std::collections::BTreeMap;

use stowage::fetch::ArchiveSource;
use stowage::restore::{run_restore, RestoreRequest};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::restore_scenarios::{backup_quietly, uploads_only};
use stowage_conformance::{built_library, infrastructure_missing, BucketToolStores, Harness};
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

/// The plugin under test, talking to S3 through `proxy`.
fn harness(plugin: &str, proxy: &Proxy) -> Option<Harness> {
    let Some(stores) = BucketToolStores::from_env("s3") else {
        return infrastructure_missing("the S3 test server (STOWAGE_TEST_VENV)");
    };
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let endpoint = proxy.url();
    let config = match plugin {
        "s3cmd" => format!(
            "config_file = {:?}\nendpoint = {:?}\n",
            env("STOWAGE_TEST_S3CFG"),
            endpoint.trim_start_matches("http://")
        ),
        _ => format!(
            "config_file = {:?}\ncredentials_file = {:?}\nendpoint_url = {endpoint:?}\n",
            env("STOWAGE_TEST_AWS_CONFIG"),
            env("STOWAGE_TEST_AWS_CREDENTIALS")
        ),
    };
    let library = built_library(&format!("stowage_plugin_{plugin}"));
    Some(Harness::load(&library, &config, Box::new(stores)).expect("the plugin loads"))
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
    let Some(endpoint) = std::env::var("STOWAGE_TEST_S3_ENDPOINT").ok() else {
        return infrastructure_missing("the S3 test server (STOWAGE_TEST_S3_ENDPOINT)")
            .unwrap_or(());
    };
    let proxy = Proxy::start(&endpoint).expect("the proxy starts");
    let Some(h) = harness(plugin, &proxy) else {
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
    let settings = uploads_only(&*uploads, &*backups, &*tmp, staging.path());
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
