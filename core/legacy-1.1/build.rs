//! Compiles the frozen API 1.1 under the package name it was released with:
//! abi_stable records `CARGO_PKG_NAME` in every layout and the host checks
//! it (see Cargo.toml).

fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=stowage-plugin-api");
    println!("cargo:rerun-if-changed=build.rs");
}
