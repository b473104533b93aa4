//! `stowage-test-proxy --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--port-file FILE]`
//!
//! Counts (and, on request, breaks) S3 requests on their way to a test
//! server; see the library docs for the admin endpoints. Prints
//! `listening on 127.0.0.1:PORT` and serves until killed.

use std::io::Write;
use std::process::ExitCode;

use stowage_test_proxy::Proxy;

const USAGE: &str =
    "usage: stowage-test-proxy --upstream URL [--listen 127.0.0.1:PORT] [--port-file FILE]";

fn main() -> ExitCode {
    let mut upstream = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut port_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        match arg.as_str() {
            "--upstream" => upstream = value(),
            "--listen" => listen = value().unwrap_or_default(),
            "--port-file" => port_file = value(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("unknown argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(upstream) = upstream else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let Ok(listen) = listen.parse() else {
        eprintln!("--listen must be IP:PORT, not {listen:?}");
        return ExitCode::from(2);
    };
    let proxy = match Proxy::start_on(listen, &upstream) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("stowage-test-proxy: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {} -> {upstream}", proxy.addr());
    let _ = std::io::stdout().flush();
    if let Some(file) = port_file {
        // Written whole and renamed, so a reader never sees half a number.
        let partial = format!("{file}.partial");
        let written = std::fs::write(&partial, proxy.addr().port().to_string())
            .and_then(|()| std::fs::rename(&partial, &file));
        if let Err(e) = written {
            eprintln!("stowage-test-proxy: cannot write {file}: {e}");
            return ExitCode::FAILURE;
        }
    }
    proxy.wait();
    ExitCode::SUCCESS
}
