//! Links the AMR-NB reference decoder (opencore-amrnb, Debian's `libopencore-amrnb-dev`).
//! No maintained pure-Rust AMR-NB decoder exists, so this is the one C library intake links
//! from the system; libopus comes vendored inside the `opus` crate.
fn main() {
    if let Err(err) = pkg_config::Config::new()
        .atleast_version("0.1")
        .probe("opencore-amrnb")
    {
        panic!(
            "opencore-amrnb not found ({err}); install it with `apt-get install libopencore-amrnb-dev pkg-config`"
        );
    }
}
