//! The Extism calling convention, by hand: the host functions a task
//! needs (docs/abi.md lists them all, with their types) and `run`, which
//! reads the task's input object, calls the task and writes its JSON
//! output or its error. No crate is needed.
//!
//! The file is the same in every flowhost Rust library (`flowhost new
//! --lang rust` writes it): a library may not use all of it.
#![allow(dead_code)]

use crate::json::{self, Json};

#[link(wasm_import_module = "extism:host/env")]
extern "C" {
    fn input_length() -> u64;
    fn input_load_u8(offset: u64) -> u32;
    fn input_load_u64(offset: u64) -> u64;
    fn alloc(length: u64) -> u64;
    fn store_u8(offset: u64, value: u32);
    fn store_u64(offset: u64, value: u64);
    fn output_set(offset: u64, length: u64);
    fn error_set(offset: u64);
    fn log_info(offset: u64);
}

/// The call's input bytes.
pub fn input() -> Vec<u8> {
    let n = unsafe { input_length() };
    let mut buf = Vec::with_capacity(n as usize);
    let mut i = 0;
    while i + 8 <= n {
        buf.extend_from_slice(&unsafe { input_load_u64(i) }.to_le_bytes());
        i += 8;
    }
    while i < n {
        buf.push(unsafe { input_load_u8(i) } as u8);
        i += 1;
    }
    buf
}

/// Copies bytes into a new block of the host's memory.
fn block(bytes: &[u8]) -> u64 {
    let off = unsafe { alloc(bytes.len() as u64) };
    let mut chunks = bytes.chunks_exact(8);
    let mut at = off;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        unsafe { store_u64(at, u64::from_le_bytes(w)) };
        at += 8;
    }
    for &b in chunks.remainder() {
        unsafe { store_u8(at, b as u32) };
        at += 1;
    }
    off
}

/// Writes a line to the host's log, at info level.
pub fn log(msg: &str) {
    unsafe { log_info(block(msg.as_bytes())) }
}

/// The task's named inputs: the members of its input object.
pub struct Input(Vec<(String, Json)>);

impl Input {
    /// The input called name, if the object has it.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn need(&self, name: &str) -> Result<&Json, String> {
        self.get(name).ok_or_else(|| format!("missing input \"{}\"", name))
    }

    /// The string input called name.
    pub fn str(&self, name: &str) -> Result<&str, String> {
        match self.need(name)? {
            Json::Str(s) => Ok(s),
            v => Err(format!("input \"{}\" must be a string, not {}", name, v.preview())),
        }
    }

    /// The integer input called name, from lo to hi.
    pub fn int(&self, name: &str, lo: i64, hi: i64) -> Result<i64, String> {
        match self.need(name)? {
            Json::Int(n) if *n >= lo as i128 && *n <= hi as i128 => Ok(*n as i64),
            v => Err(format!("input \"{}\" must be an integer from {} to {}, not {}", name, lo, hi, v.preview())),
        }
    }
}

/// Runs task `name` on the call's input: its output, or its error, named
/// after the task, is what the host receives. The export returns run's
/// result: 0 for success, 1 for an error.
pub fn run(name: &str, task: fn(&Input) -> Result<Json, String>) -> i32 {
    let result = match json::parse(&input()) {
        Ok(Json::Obj(members)) => task(&Input(members)),
        Ok(v) => Err(format!("the input must be a JSON object, not {}", v.preview())),
        Err(e) => Err(format!("the input is not JSON: {}", e)),
    };
    match result {
        Ok(v) => {
            let out = v.to_string();
            unsafe { output_set(block(out.as_bytes()), out.len() as u64) };
            0
        }
        Err(msg) => {
            unsafe { error_set(block(format!("{}: {}", name, msg).as_bytes())) };
            1
        }
    }
}
