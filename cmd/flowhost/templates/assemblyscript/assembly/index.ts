// @NAME@: a flowhost task library in AssemblyScript, with the Extism
// AssemblyScript PDK (@extism/as-pdk 1.0.0).
//
// Every task is an exported function (): i32. It reads its input, a JSON
// object with one member per declared input, writes its output as JSON,
// and returns 0, or sets an error and returns 1.

import { Host, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

function fail(msg: string): i32 {
  error_set(Memory.allocateString(msg).offset);
  return 1;
}

// abort replaces AssemblyScript's default (which would import env.abort):
// a runtime error becomes the task's error message, then the call traps.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  error_set(Memory.allocateString("@NAME@: " + (message ? message! : "abort")).offset);
  unreachable();
}

// stringMember returns the string member key of the JSON object text,
// or null when it is absent or not a plain string. A deliberately small
// reader: no escapes, no nesting (flowhost's plugins/examples/jsonkit-as
// has a real JSON parser).
function stringMember(text: string, key: string): string | null {
  const quoted = '"' + key + '"';
  let i = text.indexOf(quoted);
  if (i < 0) return null;
  i += quoted.length;
  while (i < text.length && (text.charAt(i) == " " || text.charAt(i) == ":")) i++;
  if (i >= text.length || text.charAt(i) != '"') return null;
  const end = text.indexOf('"', i + 1);
  if (end < 0) return null;
  const value = text.substring(i + 1, end);
  return value.includes("\\") ? null : value;
}

// greet: a greeting for name.
export function greet(): i32 {
  const input = Host.inputString();
  const name = stringMember(input, "name");
  const greeting = stringMember(input, "greeting"); // its default comes from the manifest
  if (name == null) return fail('greet: input "name" must be a string without escapes');
  if (greeting == null) return fail('greet: input "greeting" must be a string without escapes');
  Host.outputString('"' + greeting! + ", " + name! + '!"');
  return 0;
}
