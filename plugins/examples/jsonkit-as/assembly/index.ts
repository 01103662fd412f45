// jsonkit: a flowhost task library that reshapes JSON, in AssemblyScript
// with the Extism AssemblyScript PDK.
//
// Every task is an exported function (): i32. It reads its input, a JSON
// object with one member per declared input, and outputs one JSON value.
// It returns 0 on success; on failure it gives a message to error_set and
// returns 1.

import { Host, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";
import { JValue, Parser, toJSON, ARRAY, BOOL, NUMBER, OBJECT, STRING } from "./json";

// ---------------------------------------------------------------------------
// Helpers.

function setError(msg: string): void {
  const mem = Memory.allocateString(msg);
  error_set(mem.offset);
}

function fail(msg: string): i32 {
  setError(msg);
  return 1;
}

// abort replaces AssemblyScript's default abort (which would import
// env.abort): an assertion failure or a runtime error becomes the task's
// error message, then the call traps.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let msg = "jsonkit: abort";
  if (message != null) msg += ": " + message;
  if (fileName != null) msg += " (" + fileName + ":" + line.toString() + ":" + column.toString() + ")";
  setError(msg);
  unreachable();
}

// output writes v as the task's output. (Host.outputString of PDK 1.0.0
// sizes the block in UTF-16 units, not UTF-8 bytes, so it is not used.)
function output(v: JValue): i32 {
  Host.output(toJSON(v));
  return 0;
}

// readInput parses the input object. On failure it sets the error and
// returns null.
function readInput(task: string): JValue | null {
  const p = new Parser(String.UTF8.decode(Host.input().buffer));
  const v = p.parse();
  if (v == null) {
    setError(task + ": the input is not valid JSON: " + p.error);
    return null;
  }
  if (v.kind != OBJECT) {
    setError(task + ": the input must be a JSON object with one member per input");
    return null;
  }
  return v;
}

// need returns input name, or sets a "missing input" error and returns null.
function need(task: string, input: JValue, name: string): JValue | null {
  const v = input.get(name);
  if (v == null) setError(task + ": missing input '" + name + "'");
  return v;
}

// ---------------------------------------------------------------------------
// Exports. The module is built with AssemblyScript's "minimal" runtime: no
// collection happens during a call (no shadow stack, no incremental steps),
// and each task collects all garbage once its output has been handed to the
// host, when nothing on the stack is alive.

export function pick(): i32 {
  const rc = pick_();
  __collect();
  return rc;
}

export function flatten(): i32 {
  const rc = flatten_();
  __collect();
  return rc;
}

export function count_keys(): i32 {
  const rc = count_keys_();
  __collect();
  return rc;
}

export function merge(): i32 {
  const rc = merge_();
  __collect();
  return rc;
}

// ---------------------------------------------------------------------------
// Tasks.

// pick: {object, keys} -> picked: the members of object named in keys, in
// the order of keys. Keys that object lacks are skipped.
function pick_(): i32 {
  const input = readInput("pick");
  if (input == null) return 1;
  const obj = need("pick", input, "object");
  if (obj == null) return 1;
  const keys = need("pick", input, "keys");
  if (keys == null) return 1;
  if (obj.kind != OBJECT) return fail("pick: input 'object' must be a JSON object");
  if (keys.kind != ARRAY) return fail("pick: input 'keys' must be an array of strings");
  const out = JValue.object();
  for (let i = 0; i < keys.items.length; i++) {
    const k = keys.items[i];
    if (k.kind != STRING) return fail("pick: input 'keys' must be an array of strings");
    const v = obj.get(k.text);
    if (v != null) out.set(k.text, v);
  }
  return output(out);
}

function flattenInto(v: JValue, depth: i32, out: Array<JValue>): void {
  for (let i = 0; i < v.items.length; i++) {
    const item = v.items[i];
    if (item.kind == ARRAY && depth != 0) {
      flattenInto(item, depth - 1, out);
    } else {
      out.push(item);
    }
  }
}

// flatten: {items, depth=-1} -> flat: the elements of nested arrays, in
// order. depth limits how many levels are flattened; -1 flattens them all.
function flatten_(): i32 {
  const input = readInput("flatten");
  if (input == null) return 1;
  const items = need("flatten", input, "items");
  if (items == null) return 1;
  if (items.kind != ARRAY) return fail("flatten: input 'items' must be an array");
  let depth: i32 = -1;
  const d = input.get("depth");
  if (d != null && d.kind != 0) {
    const n = d.kind == NUMBER ? parseFloat(d.text) : NaN;
    if (isNaN(n) || n != Math.floor(n) || n < -1 || n > 1000000) {
      return fail("flatten: input 'depth' must be an integer >= -1 (-1: all levels)");
    }
    depth = <i32>n;
  }
  const out = new Array<JValue>();
  flattenInto(items, depth, out);
  return output(JValue.array(out));
}

// count_keys: {object} -> key_count: how many members object has.
function count_keys_(): i32 {
  const input = readInput("count_keys");
  if (input == null) return 1;
  const obj = need("count_keys", input, "object");
  if (obj == null) return 1;
  if (obj.kind != OBJECT) return fail("count_keys: input 'object' must be a JSON object");
  return output(JValue.number(obj.keys.length.toString()));
}

function mergeInto(dst: JValue, src: JValue, deep: bool): JValue {
  const out = JValue.object();
  for (let i = 0; i < dst.keys.length; i++) out.set(dst.keys[i], dst.items[i]);
  for (let i = 0; i < src.keys.length; i++) {
    const k = src.keys[i];
    const v = src.items[i];
    const old = out.get(k);
    if (deep && old != null && old.kind == OBJECT && v.kind == OBJECT) {
      out.set(k, mergeInto(old, v, true));
    } else {
      out.set(k, v);
    }
  }
  return out;
}

// merge: {a, b, deep=false} -> merged: the members of a, then those of b;
// on a shared key b wins. With deep, two objects under a shared key are
// merged the same way instead.
function merge_(): i32 {
  const input = readInput("merge");
  if (input == null) return 1;
  const a = need("merge", input, "a");
  if (a == null) return 1;
  const b = need("merge", input, "b");
  if (b == null) return 1;
  if (a.kind != OBJECT) return fail("merge: input 'a' must be a JSON object");
  if (b.kind != OBJECT) return fail("merge: input 'b' must be a JSON object");
  let deep = false;
  const d = input.get("deep");
  if (d != null && d.kind != 0) {
    if (d.kind != BOOL) return fail("merge: input 'deep' must be true or false");
    deep = d.bool;
  }
  return output(mergeInto(a, b, deep));
}
