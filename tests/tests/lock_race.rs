//! Five restores into one bucket started at the same instant: exactly one
//! goes on, the other four refuse (exit code 5) naming the holder, and the
//! bucket ends equal to the backup. For the s3cmd and aws plugins the lock
//! PUTs go through the fault proxy, which holds each one back 2 s longer
//! than the one before (0, 2, 4, 6, 8 s) — past the 0.5 s pause of the old
//! write-then-read-back lock, under which the first restore went on and a
//! later one overwrote its lock, read itself back and went on too. The fs
//! plugin races on the filesystem itself. And with the capability turned
//! off, the weaker lock still refuses a second restore.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::Result;
use stowage::config::{Component, Settings};
use stowage::exit::exit_code_for;
use stowage::restore::{run_restore, RestoreReport, RestoreRequest};
use stowage::store::backup_store::BackupStore;
use stowage::store::fetch::ArchiveSource;
use stowage::store::lock::lock_name;
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::restore_scenarios::{
    a_second_restore_into_the_same_bucket_refuses, backup_quietly,
};
use stowage_conformance::{
    local_dir_harness, run_scenario, s3_test_endpoint, s3_tool_harness, Harness,
};
use stowage_plugin_api::Location;
use stowage_test_proxy::{FaultConfig, Proxy};

/// How many restores race.
const RESTORES: usize = 5;

/// How long a restore waits at its confirmation for the others to refuse.
const PATIENCE: Duration = Duration::from_secs(30);

/// A user who says yes only once every other restore has refused (or
/// after [`PATIENCE`]): the restore that went on holds its lock meanwhile,
/// so the others find its holder however late their lock writes land.
fn confirm_once_the_others_refused(refused: &AtomicUsize) -> Result<bool> {
    let asked = Instant::now();
    while refused.load(Ordering::SeqCst) < RESTORES - 1 && asked.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(true)
}

/// Backs up a small bucket, adds an object, starts [`RESTORES`] restores of
/// the backup at once (each with its own staging directory, as on separate
/// machines) and checks that exactly one went on.
fn exactly_one_of_five_restores_goes_on(h: &Harness) -> Result<()> {
    let registry = h.registry()?;
    let uploads = h.bucket("race-uploads")?;
    let backups = h.bucket("race-backups")?;
    let tmp = h.missing_bucket("race-tmp");
    let tree = LocalTree::new()?;
    for i in 0..6u64 {
        tree.write(&format!("@hashed/object {i}.bin"), &content(i, 2_000))?;
    }
    uploads.seed(tree.path())?;
    let staging = tempfile::tempdir()?;
    let settings = Settings {
        label: Some("stowage_gitlab".to_string()),
        destination: Location::parse(&backups.url()),
        tmp_bucket: Some(Location::parse(&tmp.url())),
        staging_dir: staging.path().join("backup"),
        components: vec![Component {
            name: "uploads".to_string(),
            bucket: Location::parse(&uploads.url()),
            excludes: Vec::new(),
        }],
    };
    let backup = backup_quietly(&settings, &registry)?;
    let backed_up = uploads.contents()?;
    uploads.put("added later.bin", b"not in the backup")?;

    let start = Barrier::new(RESTORES);
    let refused = AtomicUsize::new(0);
    let outcomes: Vec<Result<RestoreReport>> = std::thread::scope(|scope| {
        let restores: Vec<_> = (0..RESTORES)
            .map(|i| {
                let settings = Settings {
                    staging_dir: staging.path().join(format!("restore {i}")),
                    ..settings.clone()
                };
                let (start, registry, refused) = (&start, &registry, &refused);
                let request = RestoreRequest {
                    quiet: true,
                    ..RestoreRequest::new(ArchiveSource::Timestamp(backup.information.created_at))
                };
                scope.spawn(move || {
                    start.wait();
                    let confirm = |_: &str| confirm_once_the_others_refused(refused);
                    let outcome = run_restore(&settings, registry, &request, &confirm);
                    if outcome.is_err() {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    outcome
                })
            })
            .collect();
        restores
            .into_iter()
            .map(|r| r.join().expect("a restore does not panic"))
            .collect()
    });

    let mut went_on = Vec::new();
    let mut refusals = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(report) => went_on.push(report),
            Err(error) => refusals.push(error),
        }
    }
    let texts: Vec<String> = refusals.iter().map(|e| format!("{e:#}")).collect();
    anyhow::ensure!(
        went_on.len() == 1,
        "{} restores went on; refusals: {texts:?}",
        went_on.len()
    );
    for (error, text) in refusals.iter().zip(&texts) {
        anyhow::ensure!(
            exit_code_for(error) == 5,
            "exit code {}: {text}",
            exit_code_for(error)
        );
        anyhow::ensure!(
            text.contains("another restore into")
                && text.contains(&format!("pid {}", std::process::id())),
            "the refusal does not name the holder: {text}"
        );
    }
    let report = &went_on[0];
    anyhow::ensure!(report.succeeded(), "the restore that went on failed");
    anyhow::ensure!(
        uploads.contents()? == backed_up,
        "the bucket does not equal the backup"
    );
    let store = BackupStore::open(&settings.destination, &registry)?;
    anyhow::ensure!(
        store
            .get_bytes(&lock_name(&settings.components[0].bucket))?
            .is_none(),
        "the lock was left behind"
    );
    Ok(())
}

/// The race through the proxy, with the lock PUTs staggered.
fn exactly_one_goes_on_through_slow_lock_writes(plugin: &str) {
    let Some(proxy) = s3_test_endpoint().map(|e| Proxy::start(&e).expect("the proxy starts"))
    else {
        return;
    };
    let Some(h) = s3_tool_harness(plugin, &proxy.url(), "") else {
        return;
    };
    proxy
        .set_faults(FaultConfig {
            delay_step_ms: 2_000,
            classes: vec!["PUT".into()],
            path_contains: Some(".stowage-lock".into()),
            ..FaultConfig::default()
        })
        .expect("the faults are valid");
    if let Err(error) = exactly_one_of_five_restores_goes_on(&h) {
        panic!("{plugin}: {error:#}");
    }
    let delayed = proxy.stats().faults.delayed;
    assert!(
        delayed >= RESTORES as u64 - 1,
        "{plugin}: only {delayed} lock writes were held back"
    );
}

#[test]
fn s3cmd_lets_exactly_one_of_five_restores_through_slow_lock_writes() {
    exactly_one_goes_on_through_slow_lock_writes("s3cmd");
}

#[test]
fn aws_lets_exactly_one_of_five_restores_through_slow_lock_writes() {
    exactly_one_goes_on_through_slow_lock_writes("aws");
}

#[test]
fn fs_lets_exactly_one_of_five_simultaneous_restores_through() {
    let h = local_dir_harness("stowage_plugin_fs");
    if let Err(error) = exactly_one_of_five_restores_goes_on(&h) {
        panic!("fs: {error:#}");
    }
}

/// s3cmd told its server ignores `If-None-Match` (`conditional_create =
/// false`): the host falls back to the weaker lock, which still refuses a
/// restore while another holds the bucket and still takes over a stale
/// lock, and backups still claim their names (by existence check).
fn s3cmd_without_conditional_create() -> Option<Harness> {
    let h = s3_tool_harness(
        "s3cmd",
        &s3_test_endpoint()?,
        "conditional_create = false\n",
    )?;
    assert!(!h.plugin.conditional_create());
    Some(h)
}

#[test]
fn without_conditional_create_a_second_restore_still_refuses() {
    run_scenario(
        "a_second_restore_into_the_same_bucket_refuses",
        s3cmd_without_conditional_create,
        a_second_restore_into_the_same_bucket_refuses,
    );
}
