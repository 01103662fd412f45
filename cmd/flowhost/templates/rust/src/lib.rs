//! @NAME@: a flowhost task library in Rust, built with rustc alone (no
//! cargo, no crates) for wasm32-unknown-unknown. extism.rs is the Extism
//! calling convention by hand, json.rs a small JSON reader and writer.
//!
//! Each task is an exported function of no arguments that returns 0 (its
//! output set) or 1 (its error set); `extism::run` reads the input object
//! and writes the output, so a task is a function from its inputs to a
//! value.

mod extism;
mod json;

use json::Json;

/// greet: a greeting for name.
#[no_mangle]
pub extern "C" fn greet() -> i32 {
    extism::run("greet", |input| {
        let name = input.str("name")?;
        let greeting = input.str("greeting")?; // its default comes from the manifest
        Ok(Json::Str(format!("{}, {}!", greeting, name)))
    })
}
