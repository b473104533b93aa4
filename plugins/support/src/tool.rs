//! Driving an external command-line tool (s3cmd, aws, gsutil) as a child
//! process: finding it, giving it a controlled environment, streaming its
//! output, and turning its failures into one-line [`PluginError`]s.
//!
//! Credentials reach a tool only through its own config files or its
//! environment, never its argv; any secret value the plugin knows is also
//! redacted from every message built here.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rustix::process::{
    kill_process_group, set_parent_process_death_signal, waitid, Pid, Signal, WaitId, WaitIdOptions,
};
use stowage_plugin_api::{ErrorKind, PluginError};

/// How long a tool may print nothing, on stdout or stderr, before it is
/// taken for stalled and killed, unless configured (see [`Tool::set_stall_timeout`]).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(900);

/// The environment variable that overrides every plugin's `stall_timeout`
/// (seconds).
pub const STALL_TIMEOUT_VARIABLE: &str = "STOWAGE_STALL_TIMEOUT";

/// How long a stalled tool's process group gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How to run one tool.
#[derive(Clone, Debug)]
pub struct Tool {
    /// The plugin's name, for messages ("plugin s3cmd").
    pub plugin: String,
    /// The program as configured (`s3cmd`, or a path).
    pub program: String,
    /// How to install it, for the "not found" message (`pip install s3cmd`).
    pub install_hint: String,
    /// Environment variables set for every run.
    pub env: Vec<(OsString, OsString)>,
    /// Arguments put before every command's own (e.g. `-c FILE`).
    pub base_args: Vec<OsString>,
    /// Values that must never appear in a message (secret keys).
    pub secrets: Vec<String>,
    /// A run that prints nothing for this long is killed (its whole
    /// process group) and fails.
    pub stall_timeout: Duration,
}

/// What a finished run printed.
#[derive(Clone, Debug)]
pub struct ToolOutput {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Tool {
    /// A tool run as `program` (a name looked up on `PATH`, or a path).
    pub fn new(plugin: &str, program: &str, install_hint: &str) -> Tool {
        Tool {
            plugin: plugin.to_string(),
            program: program.to_string(),
            install_hint: install_hint.to_string(),
            env: Vec::new(),
            base_args: Vec::new(),
            secrets: Vec::new(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }

    /// Sets the stall timeout from [`STALL_TIMEOUT_VARIABLE`] if it is set,
    /// else from the plugin's `stall_timeout` key (`configured`, seconds),
    /// else leaves [`DEFAULT_STALL_TIMEOUT`]. Zero or a value that is not a
    /// number is a `Config` error.
    pub fn set_stall_timeout(&mut self, configured: Option<u64>) -> Result<(), PluginError> {
        let bad = |what: String| {
            PluginError::new(
                ErrorKind::Config,
                format!(
                    "plugin {}: {what} must be a whole number of seconds, at least 1",
                    self.plugin
                ),
            )
        };
        let seconds = match std::env::var(STALL_TIMEOUT_VARIABLE) {
            Ok(text) => Some(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(format!("{STALL_TIMEOUT_VARIABLE}={text:?}")))?,
            ),
            Err(_) => configured,
        };
        match seconds {
            Some(0) => Err(bad("the stall timeout".to_string())),
            Some(seconds) => {
                self.stall_timeout = Duration::from_secs(seconds);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Sets an environment variable for every run.
    pub fn set_env(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.env.push((name.into(), value.into()));
    }

    /// The program's full path, or a `ToolMissing` error saying what to do.
    pub fn resolve(&self) -> Result<PathBuf, PluginError> {
        let program = Path::new(&self.program);
        let found = if program.components().count() > 1 {
            program.is_file().then(|| program.to_path_buf())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(program))
                    .find(|candidate| is_executable(candidate))
            })
        };
        found.ok_or_else(|| {
            let place = if program.components().count() > 1 {
                "at that path"
            } else {
                "on PATH"
            };
            PluginError::new(
                ErrorKind::ToolMissing,
                format!(
                    "{} not found {place}: `{}`, or set `program` for plugin {} in plugins.toml",
                    self.program, self.install_hint, self.plugin
                ),
            )
        })
    }

    /// A command for `args`, with the tool's environment and base arguments,
    /// no standard input, and a locale that keeps output in UTF-8. It runs
    /// in a process group of its own, so that a stalled tool is killed with
    /// everything it started (and the host decides what a Ctrl-C stops).
    /// Its first process gets SIGKILL if the thread that started it dies —
    /// which waits for it, so only when Stowage itself is killed: a killed
    /// Stowage leaves no tool going on alone (though what a tool started
    /// itself may outlive it).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Command, PluginError> {
        let mut command = Command::new(self.resolve()?);
        // SAFETY: the closure runs between fork and exec and only makes one
        // system call (prctl), which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                set_parent_process_death_signal(Some(Signal::KILL)).map_err(std::io::Error::from)
            });
        }
        command
            .args(&self.base_args)
            .args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .env("LC_ALL", "C.UTF-8")
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONUTF8", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        Ok(command)
    }

    /// Runs the tool to completion; a non-zero exit is an error built from
    /// its stderr (see [`Tool::failure`]).
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<ToolOutput, PluginError> {
        let (status, output) =
            self.spawn_and_collect(args, None, Kept::All, &mut |_| {}, &mut |_| {})?;
        if status.success() {
            Ok(output)
        } else {
            Err(self.failure(args, status, &output.stderr))
        }
    }

    /// Runs the tool, handing each line of stdout and stderr to the
    /// callbacks as it arrives (for progress and results). Nothing is kept
    /// but the last [`STDERR_TAIL`] bytes of stderr, for the error of a
    /// failed run: a sync of 100,000 files prints tens of megabytes.
    pub fn run_streaming<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        mut on_stdout: impl FnMut(&str),
        mut on_stderr: impl FnMut(&str) + Send,
    ) -> Result<(), PluginError> {
        let (status, output) =
            self.spawn_and_collect(args, None, Kept::Tail, &mut on_stdout, &mut on_stderr)?;
        if status.success() {
            Ok(())
        } else {
            Err(self.failure(args, status, &output.stderr))
        }
    }

    /// Runs the tool and returns its exit status and output without judging
    /// them (for tools whose exit codes carry meaning).
    pub fn run_unchecked<S: AsRef<OsStr>>(
        &self,
        args: &[S],
    ) -> Result<(ExitStatus, ToolOutput), PluginError> {
        self.spawn_and_collect(args, None, Kept::All, &mut |_| {}, &mut |_| {})
    }

    /// Runs the tool with `input` (if any) on its standard input, handing
    /// each line of output to the callbacks, and kills its process group if
    /// it prints nothing for [`Tool::stall_timeout`] (then the run fails).
    pub(crate) fn spawn_and_collect<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
        kept: Kept,
        on_stdout: &mut dyn FnMut(&str),
        on_stderr: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(ExitStatus, ToolOutput), PluginError> {
        let mut command = self.command(args)?;
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                PluginError::new(
                    ErrorKind::ToolMissing,
                    format!("cannot start {}: {e}", self.program),
                )
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let group = child.id();
        let activity = Activity::new();
        let (finished, watched) = channel::<()>();
        let (stalled, stdout_text, stderr_text, status) = std::thread::scope(|scope| {
            let watchdog =
                scope.spawn(|| watch_for_stall(group, &activity, self.stall_timeout, watched));
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // Written from another thread so that a tool blocked on a full
                // stdout or stderr pipe cannot deadlock with us blocked on its
                // stdin. A write error means the tool exited early; its exit
                // status says why.
                scope.spawn(move || {
                    let _ = stdin.write_all(input);
                });
            }
            let err_reader = scope.spawn(|| read_lines(activity.watch(stderr), kept, on_stderr));
            // A streaming run's stdout went to the callback; only stderr explains failures.
            let stdout_kept = match kept {
                Kept::All => Kept::All,
                Kept::Tail | Kept::Nothing => Kept::Nothing,
            };
            let out = read_lines(activity.watch(stdout), stdout_kept, on_stdout);
            let err = err_reader.join().expect("the stderr reader does not panic");
            // Reaped only once the watchdog is done, so the group it may
            // kill is still this run's.
            wait_without_reaping(group);
            drop(finished);
            let stalled = watchdog.join().expect("the watchdog does not panic");
            (stalled, out, err, child.wait())
        });
        if stalled {
            return Err(self.stall(args));
        }
        let status = status.map_err(|e| {
            PluginError::new(
                ErrorKind::ToolFailed,
                format!("waiting for {} failed: {e}", self.program),
            )
        })?;
        Ok((
            status,
            ToolOutput {
                stdout: stdout_text,
                stderr: stderr_text,
            },
        ))
    }

    /// The error for a run killed by [`watch_for_stall`].
    fn stall<S: AsRef<OsStr>>(&self, args: &[S]) -> PluginError {
        let verb = subcommand(args).join(" ");
        let during = match verb.is_empty() {
            true => String::new(),
            false => format!(" during `{verb}`"),
        };
        let message = format!(
            "{} stalled: no output for {} s{during}; killed it (raise stall_timeout of plugin {} in plugins.toml, or {STALL_TIMEOUT_VARIABLE})",
            self.program,
            self.stall_timeout.as_secs(),
            self.plugin
        );
        PluginError::new(ErrorKind::ToolFailed, self.redact(&message))
    }

    /// The error for a failed run: the tool, its subcommand, the exit code
    /// and the last meaningful line of stderr, with a kind guessed from
    /// the usual messages of S3 and GCS tools.
    pub fn failure<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        status: ExitStatus,
        stderr: &str,
    ) -> PluginError {
        let subcommand = subcommand(args);
        let code = status
            .code()
            .map_or("a signal".to_string(), |c| format!("exit code {c}"));
        let last = last_meaningful_line(stderr).unwrap_or("no error output");
        let command: Vec<&str> = std::iter::once(self.program.as_str())
            .chain(subcommand.iter().map(String::as_str))
            .collect();
        let message = format!("{} failed ({code}): {last}", command.join(" "));
        PluginError::new(classify(stderr), self.redact(&message))
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_string(), |t, secret| {
                t.replace(secret.as_str(), "***")
            })
    }

    /// The tool's version: the first line of `args` output (e.g. `--version`),
    /// with a leading program name removed.
    pub fn version(&self, args: &[&str]) -> Result<String, PluginError> {
        let output = self.run(args)?;
        let text = if output.stdout.trim().is_empty() {
            &output.stderr
        } else {
            &output.stdout
        };
        Ok(text.lines().next().unwrap_or("").trim().to_string())
    }
}

/// The verb of a run ("sync", "s3 sync", "rsync"): its leading plain
/// words, no paths, keys or option values.
fn subcommand<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .filter(|a| !a.starts_with('-'))
        .take_while(|a| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
        })
        .take(2)
        .collect()
}

/// When a run last printed anything, on either stream.
struct Activity {
    started: Instant,
    /// Milliseconds from `started` to the last output.
    last_output: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last_output: AtomicU64::new(0),
        }
    }

    /// `stream`, noting every read that returns bytes as activity.
    fn watch<R: Read>(&self, stream: R) -> Watched<'_, R> {
        Watched {
            stream,
            activity: self,
        }
    }

    /// How long nothing has been printed.
    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_output.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A stream whose reads count as a run's activity (see [`Activity::watch`]):
/// partial lines too, such as progress redrawn with `\r`.
struct Watched<'a, R> {
    stream: R,
    activity: &'a Activity,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(buffer)?;
        if n > 0 {
            let now = self.activity.started.elapsed().as_millis() as u64;
            self.activity.last_output.store(now, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Waits until the run ends (`finished` disconnects); if it prints nothing
/// for `timeout` first, sends SIGTERM to its process group `group`, then
/// SIGKILL if it has not ended after [`KILL_GRACE`]. Whether it stalled.
fn watch_for_stall(
    group: u32,
    activity: &Activity,
    timeout: Duration,
    finished: Receiver<()>,
) -> bool {
    loop {
        match finished.recv_timeout(timeout.saturating_sub(activity.idle())) {
            Err(RecvTimeoutError::Timeout) if activity.idle() >= timeout => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
    // The group leader is not reaped before `finished` disconnects (see
    // `wait_without_reaping`), so the group's id still names this run's processes.
    let group = Pid::from_raw(group as i32).expect("a child's pid is positive");
    let _ = kill_process_group(group, Signal::TERM);
    if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(KILL_GRACE) {
        let _ = kill_process_group(group, Signal::KILL);
    }
    true
}

/// Blocks until the child `pid` has exited, leaving it to be reaped (its
/// pid, which is also its process group's, stays taken until then).
fn wait_without_reaping(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        );
    }
}

/// How many bytes of stderr a streaming run keeps (see [`Tool::run_streaming`]).
pub const STDERR_TAIL: usize = 64 * 1024;

/// How much of a stream [`read_lines`] keeps once its lines are handed over.
#[derive(Clone, Copy)]
pub(crate) enum Kept {
    All,
    /// The last [`STDERR_TAIL`] bytes or so, from a line start.
    Tail,
    Nothing,
}

fn read_lines(stream: impl Read, kept: Kept, on_line: &mut (dyn FnMut(&str) + '_)) -> String {
    let mut all = String::new();
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut buffer) {
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buffer).into_owned();
        on_line(line.trim_end_matches(['\n', '\r']));
        match kept {
            Kept::All => all.push_str(&line),
            Kept::Tail => {
                all.push_str(&line);
                if all.len() > 2 * STDERR_TAIL {
                    // Whole lines only, so the tail is valid UTF-8.
                    let cut = all.len() - STDERR_TAIL;
                    let start = all[cut..].find('\n').map_or(cut, |n| cut + n + 1);
                    all.drain(..start);
                }
            }
            Kept::Nothing => {}
        }
        buffer.clear();
    }
    all
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The last line of `stderr` that says something (not blank, not a
/// progress or traceback frame).
pub fn last_meaningful_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("File \"") && !l.starts_with('^'))
}

/// The kind of failure the usual S3 / GCS tool messages point to.
pub fn classify(stderr: &str) -> ErrorKind {
    let text = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if any(&[
        "nosuchbucket",
        "bucket does not exist",
        "bucketnotfound",
        "not found: 404",
        "no such bucket",
    ]) {
        ErrorKind::BucketMissing
    } else if any(&[
        "accessdenied",
        "access denied",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "403",
        "401",
        "credentials",
        "forbidden",
    ]) {
        ErrorKind::Unauthorized
    } else if any(&[
        "connection refused",
        "could not connect",
        "endpointconnectionerror",
        "name or service not known",
        "timed out",
        "network is unreachable",
        "connectionerror",
        "errno 111",
    ]) {
        ErrorKind::Unreachable
    } else {
        ErrorKind::ToolFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let tool = Tool::new("s3cmd", "no-such-tool-stowage", "pip install s3cmd");
        let err = tool.resolve().unwrap_err();
        assert_eq!(err.kind, ErrorKind::ToolMissing);
        assert_eq!(
            err.message.as_str(),
            "no-such-tool-stowage not found on PATH: `pip install s3cmd`, or set `program` for plugin s3cmd in plugins.toml"
        );
    }

    #[test]
    fn failures_name_the_exit_code_and_the_last_stderr_line_without_secrets() {
        let mut tool = Tool::new("x", "sh", "apt install dash");
        tool.secrets.push("hunter2".to_string());
        let err = tool
            .run(&[
                "-c",
                "echo noise >&2; echo 'AccessDenied for hunter2' >&2; exit 3",
            ])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert_eq!(
            err.message.as_str(),
            "sh failed (exit code 3): AccessDenied for ***"
        );
    }

    #[test]
    fn streaming_hands_over_every_line() {
        let tool = Tool::new("x", "sh", "");
        let mut lines = Vec::new();
        tool.run_streaming(
            &["-c", "printf 'a\\nb\\n'"],
            |l| lines.push(l.to_string()),
            |_| {},
        )
        .unwrap();
        assert_eq!(lines, ["a", "b"]);
    }

    #[test]
    fn a_failed_streaming_run_is_explained_by_the_end_of_its_stderr() {
        let tool = Tool::new("x", "sh", "");
        // ~1 MB of chatter on stderr before the line that explains the failure.
        let script = "seq 200000 >&2; echo 'ERROR: S3 error: 403 (AccessDenied)' >&2; exit 1";
        let err = tool
            .run_streaming(&["-c", script], |_| {}, |_| {})
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert!(
            err.message
                .as_str()
                .ends_with("ERROR: S3 error: 403 (AccessDenied)"),
            "{}",
            err.message
        );
    }

    /// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
    fn ended(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(") ").next().unwrap_or("").starts_with('Z')
        })
    }

    #[test]
    fn a_silent_tool_is_killed_with_everything_it_started_and_named() {
        let mut tool = Tool::new("x", "sh", "");
        tool.stall_timeout = Duration::from_secs(1);
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("sleeper");
        let script = format!("sleep 1000 & echo $! > '{}'; wait", pid_file.display());
        let started = Instant::now();
        let err = tool
            .run_streaming(&["-c", &script], |_| {}, |_| {})
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, ErrorKind::ToolFailed);
        assert_eq!(
            err.message.as_str(),
            "sh stalled: no output for 1 s; killed it (raise stall_timeout of plugin x in plugins.toml, or STOWAGE_STALL_TIMEOUT)"
        );
        let sleeper = std::fs::read_to_string(&pid_file).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !ended(sleeper.trim()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            ended(sleeper.trim()),
            "the tool's child {sleeper} still runs"
        );
    }

    #[test]
    fn a_tool_that_keeps_printing_is_never_stalled() {
        let mut tool = Tool::new("x", "sh", "");
        tool.stall_timeout = Duration::from_secs(1);
        // Progress without newlines counts as output too.
        let script = "for i in 1 2 3 4; do printf '.' >&2; sleep 0.6; done; echo done";
        let output = tool.run(&["-c", script]).unwrap();
        assert_eq!(output.stdout, "done\n");
        assert_eq!(output.stderr, "....");
    }

    #[test]
    fn a_tool_reading_input_that_stalls_is_killed_too() {
        let mut tool = Tool::new("x", "sh", "");
        tool.stall_timeout = Duration::from_secs(1);
        let err = crate::tool_input::run_with_input(&tool, &["-c", "sleep 1000"], &[b'x'; 1 << 20])
            .unwrap_err();
        assert!(
            err.message.starts_with("sh stalled: no output for 1 s"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_stall_timeout_comes_from_the_environment_then_the_config() {
        let timeout = |configured: Option<u64>| {
            let mut tool = Tool::new("x", "sh", "");
            tool.set_stall_timeout(configured)
                .map(|()| tool.stall_timeout)
        };
        std::env::remove_var(STALL_TIMEOUT_VARIABLE);
        assert_eq!(timeout(None).unwrap(), DEFAULT_STALL_TIMEOUT);
        assert_eq!(timeout(Some(30)).unwrap(), Duration::from_secs(30));
        let zero = timeout(Some(0)).unwrap_err();
        assert_eq!(zero.kind, ErrorKind::Config);
        assert_eq!(
            zero.message.as_str(),
            "plugin x: the stall timeout must be a whole number of seconds, at least 1"
        );
        std::env::set_var(STALL_TIMEOUT_VARIABLE, "7");
        assert_eq!(timeout(Some(30)).unwrap(), Duration::from_secs(7));
        std::env::set_var(STALL_TIMEOUT_VARIABLE, "soon");
        let bad = timeout(None).unwrap_err();
        std::env::remove_var(STALL_TIMEOUT_VARIABLE);
        assert_eq!(
            bad.message.as_str(),
            "plugin x: STOWAGE_STALL_TIMEOUT=\"soon\" must be a whole number of seconds, at least 1"
        );
    }

    #[test]
    fn usual_messages_are_classified() {
        assert_eq!(
            classify("An error occurred (NoSuchBucket)"),
            ErrorKind::BucketMissing
        );
        assert_eq!(
            classify("[Errno 111] Connection refused"),
            ErrorKind::Unreachable
        );
        assert_eq!(classify("something odd"), ErrorKind::ToolFailed);
    }
}
