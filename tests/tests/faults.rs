//! Server faults during a restore — 503 SlowDown, 500 InternalError,
//! connections reset in the middle of an upload, slow answers — injected
//! by a proxy in front of the S3 test server, for the s3cmd and aws
//! plugins. A restore either completes correctly or fails with one clear
//! line; either way no object that existed before and is in the backup is
//! missing afterwards, and a re-run without faults converges.

use std::collections::BTreeMap;

use stowage::restore::{run_restore, RestoreRequest};
use stowage::store::fetch::ArchiveSource;
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::restore_scenarios::{backup_quietly, uploads_only};
use stowage_conformance::scratch::ScratchStore;
use stowage_conformance::{s3_test_endpoint, s3_tool_harness, Harness};
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

/// A proxy in front of the S3 test server, and the plugin talking through it.
fn proxied(plugin: &str) -> Option<(Proxy, Harness)> {
    let proxy = Proxy::start(&s3_test_endpoint()?).expect("the proxy starts");
    let h = s3_tool_harness(plugin, &proxy.url(), "")?;
    Some((proxy, h))
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
    let Some((proxy, h)) = proxied(plugin) else {
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

/// Behind a proxy that shows single-part ETags as an SSE-KMS bucket does
/// (never the content's MD5): a backup, a restore into a fresh bucket, one
/// over a bucket that already equals the backup, and one over a bucket that
/// drifted (a same-size rewrite, an added and a deleted object) each
/// succeed, compare by size only and say so; the buckets equal the backup,
/// read back from the server directly.
fn etags_that_are_not_md5s_never_fail_a_restore(plugin: &str) {
    let Some((proxy, h)) = proxied(plugin) else {
        return;
    };
    proxy
        .set_faults(FaultConfig {
            opaque_etags: true,
            ..FaultConfig::default()
        })
        .unwrap();
    let registry = h.registry().unwrap();
    let (uploads, backups) = (
        h.bucket("kms-uploads").unwrap(),
        h.bucket("kms-backups").unwrap(),
    );
    let (fresh, tmp) = (h.missing_bucket("kms-fresh"), h.missing_bucket("kms-tmp"));
    let staging = tempfile::tempdir().unwrap();
    let tree = LocalTree::new().unwrap();
    for i in 0..12u64 {
        tree.write(
            &format!("@hashed/{i:02}/object.bin"),
            &content(300 + i, 700 + 50 * i as usize),
        )
        .unwrap();
    }
    uploads.seed(tree.path()).unwrap();
    let settings = uploads_only(&*uploads, &*backups, &*tmp, staging.path());
    let backup = backup_quietly(&settings, &registry).unwrap();
    let backed_up = uploads.contents().unwrap();

    let restore_into = |bucket: &dyn ScratchStore, what: &str| {
        let settings = uploads_only(bucket, &*backups, &*tmp, staging.path());
        let report = run_restore(
            &settings,
            &registry,
            &restore_request(backup.information.created_at),
            &|_| Ok(true),
        )
        .unwrap_or_else(|e| panic!("{plugin}, {what}: {e:#}"));
        let uploads = &report.components[0];
        assert!(report.succeeded(), "{plugin}, {what}: {:?}", uploads.error);
        assert_eq!(report.drifted(), 0, "{plugin}, {what}: drift reported");
        let verification = uploads.verification.as_ref().expect("verified");
        assert!(
            verification.etags_not_md5s || !uploads.plan.etags_are_md5s,
            "{plugin}, {what}: the opaque ETags went unnoticed: {verification:?}"
        );
        assert_eq!(
            bucket.contents().unwrap(),
            backed_up,
            "{plugin}, {what}: the bucket differs from the backup"
        );
    };
    restore_into(&*fresh, "into a fresh bucket");
    restore_into(&*uploads, "over a bucket equal to the backup");
    uploads
        .put("@hashed/03/object.bin", &content(999, 700 + 50 * 3))
        .unwrap();
    uploads.put("added.bin", b"added").unwrap();
    uploads.delete("@hashed/05/object.bin").unwrap();
    restore_into(&*uploads, "over a bucket that drifted");
}

#[test]
fn s3cmd_restores_where_etags_are_not_md5s() {
    etags_that_are_not_md5s_never_fail_a_restore("s3cmd");
}

#[test]
fn aws_restores_where_etags_are_not_md5s() {
    etags_that_are_not_md5s_never_fail_a_restore("aws");
}
