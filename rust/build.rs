//! Lets plain `cargo test` run: the test binary links libpython, so give it an rpath to the
//! interpreter's library directory. pyo3-build-config emits nothing when building the extension
//! module (maturin sets `PYO3_BUILD_EXTENSION_MODULE` / the `pyo3/extension-module` feature).
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
