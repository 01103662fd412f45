// A small JSON reader and writer for AssemblyScript.
//
// parse() builds a tree of JValue nodes; write() renders one back. Numbers
// keep the text they were written with, so they come out exactly as they
// went in (no float round trip). Strings are decoded (escapes, surrogate
// pairs) and re-encoded on output. Objects keep their member order; a
// later duplicate key replaces the value of the earlier one.

export const NULL: i32 = 0;
export const BOOL: i32 = 1;
export const NUMBER: i32 = 2;
export const STRING: i32 = 3;
export const ARRAY: i32 = 4;
export const OBJECT: i32 = 5;

const MAX_DEPTH: i32 = 128;

// Scalars share these (never written to): a scalar costs one allocation.
const NO_ITEMS = new Array<JValue>(0);
const NO_KEYS = new Array<string>(0);

export class JValue {
  kind: i32 = NULL;
  bool: bool = false;
  // The number's source text, or the decoded string.
  text: string = "";
  // Array elements, or object member values.
  items: Array<JValue> = NO_ITEMS;
  // Object member names; index maps each to its position.
  keys: Array<string> = NO_KEYS;
  index: Map<string, i32> | null = null;

  static null(): JValue {
    return new JValue();
  }

  static array(items: Array<JValue>): JValue {
    const v = new JValue();
    v.kind = ARRAY;
    v.items = items;
    return v;
  }

  static object(): JValue {
    const v = new JValue();
    v.kind = OBJECT;
    v.items = new Array<JValue>();
    v.keys = new Array<string>();
    v.index = new Map<string, i32>();
    return v;
  }

  static str(text: string): JValue {
    const v = new JValue();
    v.kind = STRING;
    v.text = text;
    return v;
  }

  static number(text: string): JValue {
    const v = new JValue();
    v.kind = NUMBER;
    v.text = text;
    return v;
  }

  // Object members: keys[i] names items[i].
  indexOf(key: string): i32 {
    const index = this.index;
    if (index == null || !index.has(key)) return -1;
    return index.get(key);
  }

  get(key: string): JValue | null {
    const i = this.indexOf(key);
    return i < 0 ? null : this.items[i];
  }

  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  // set replaces the value of an existing key, or appends a member.
  set(key: string, value: JValue): void {
    const i = this.indexOf(key);
    if (i >= 0) {
      this.items[i] = value;
    } else {
      (this.index as Map<string, i32>).set(key, this.keys.length);
      this.keys.push(key);
      this.items.push(value);
    }
  }
}

// Parser: after parse(), error is "" on success, else what went wrong.
export class Parser {
  s: string;
  pos: i32 = 0;
  error: string = "";

  constructor(s: string) {
    this.s = s;
  }

  fail(msg: string): JValue | null {
    if (this.error.length == 0) {
      this.error = msg + " at character " + this.pos.toString();
    }
    return null;
  }

  ws(): void {
    const s = this.s;
    const n = s.length;
    let i = this.pos;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      i++;
    }
    this.pos = i;
  }

  // parse reads exactly one JSON value and nothing after it.
  parse(): JValue | null {
    const v = this.value(0);
    if (v == null) return null;
    this.ws();
    if (this.pos != this.s.length) return this.fail("unexpected data after the JSON value");
    return v;
  }

  value(depth: i32): JValue | null {
    if (depth > MAX_DEPTH) return this.fail("nested too deeply");
    this.ws();
    if (this.pos >= this.s.length) return this.fail("unexpected end of input");
    const c = this.s.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth); // {
    if (c == 0x5b) return this.array(depth); // [
    if (c == 0x22) {
      const str = this.string();
      if (str == null) return null;
      const v = new JValue();
      v.kind = STRING;
      v.text = str;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.pos)) {
      this.pos += 4;
      const v = new JValue();
      v.kind = BOOL;
      v.bool = true;
      return v;
    }
    if (this.s.startsWith("false", this.pos)) {
      this.pos += 5;
      const v = new JValue();
      v.kind = BOOL;
      return v;
    }
    if (this.s.startsWith("null", this.pos)) {
      this.pos += 4;
      return JValue.null();
    }
    return this.fail("unexpected character");
  }

  digits(): i32 {
    const s = this.s;
    const n = s.length;
    const start = this.pos;
    let i = start;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      i++;
    }
    this.pos = i;
    return i - start;
  }

  number(): JValue | null {
    const start = this.pos;
    if (this.s.charCodeAt(this.pos) == 0x2d) this.pos++;
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x30) {
      this.pos++;
    } else if (this.digits() == 0) {
      return this.fail("bad number");
    }
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x2e) {
      this.pos++;
      if (this.digits() == 0) return this.fail("bad number");
    }
    if (this.pos < this.s.length && (this.s.charCodeAt(this.pos) | 0x20) == 0x65) {
      this.pos++;
      if (this.pos < this.s.length) {
        const c = this.s.charCodeAt(this.pos);
        if (c == 0x2b || c == 0x2d) this.pos++;
      }
      if (this.digits() == 0) return this.fail("bad number");
    }
    return JValue.number(this.s.substring(start, this.pos));
  }

  hex4(): i32 {
    if (this.pos + 4 > this.s.length) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.s.charCodeAt(this.pos + i);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x61 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }

  // string reads a JSON string; null (with error set) when malformed.
  string(): string | null {
    this.pos++; // "
    // Fast path: no escape, one substring.
    const s = this.s;
    const n = s.length;
    let run = this.pos;
    for (let i = run; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c == 0x22) {
        this.pos = i + 1;
        return s.substring(run, i);
      }
      if (c == 0x5c || c < 0x20) break;
    }
    const parts = new Array<string>();
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c == 0x22) {
        parts.push(this.s.substring(run, this.pos));
        this.pos++;
        return parts.join("");
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      parts.push(this.s.substring(run, this.pos));
      this.pos++;
      if (this.pos >= this.s.length) break;
      const e = this.s.charCodeAt(this.pos++);
      if (e == 0x22) parts.push('"');
      else if (e == 0x5c) parts.push("\\");
      else if (e == 0x2f) parts.push("/");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x6e) parts.push("\n");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) {
          this.fail("bad \\u escape");
          return null;
        }
        parts.push(String.fromCharCode(u)); // surrogate pairs join up in UTF-16
      } else {
        this.pos--;
        this.fail("bad escape");
        return null;
      }
      run = this.pos;
    }
    this.fail("unterminated string");
    return null;
  }

  array(depth: i32): JValue | null {
    this.pos++; // [
    const items = new Array<JValue>();
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return JValue.array(items);
    }
    while (true) {
      const v = this.value(depth + 1);
      if (v == null) return null;
      items.push(v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail("unexpected end of input in array");
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x5d) return JValue.array(items);
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or ']' in array");
      }
    }
    return null;
  }

  object(depth: i32): JValue | null {
    this.pos++; // {
    const obj = JValue.object();
    this.ws();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return obj;
    }
    while (true) {
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x22) {
        return this.fail("expected a string key in object");
      }
      const key = this.string();
      if (key == null) return null;
      this.ws();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x3a) {
        return this.fail("expected ':' in object");
      }
      this.pos++;
      const v = this.value(depth + 1);
      if (v == null) return null;
      obj.set(key, v);
      this.ws();
      if (this.pos >= this.s.length) return this.fail("unexpected end of input in object");
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x7d) return obj;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or '}' in object");
      }
    }
    return null;
  }
}

const HEX = "0123456789abcdef";

// Writer accumulates UTF-8 bytes in a buffer that doubles as it fills.
export class Writer {
  buf: Uint8Array = new Uint8Array(256);
  len: i32 = 0;

  grow(extra: i32): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  byte(c: i32): void {
    this.grow(1);
    unchecked((this.buf[this.len++] = <u8>c));
  }

  // ascii appends a string known to hold only ASCII characters.
  ascii(s: string): void {
    const n = s.length;
    this.grow(n);
    const b = this.buf;
    let l = this.len;
    for (let i = 0; i < n; i++) unchecked((b[l++] = <u8>s.charCodeAt(i)));
    this.len = l;
  }

  // jsonString appends s as a JSON string literal, UTF-8 encoded.
  jsonString(s: string): void {
    const n = s.length;
    this.grow(n + 2); // room for the common case; byte() grows further when needed
    this.byte(0x22);
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c >= 0x20 && c != 0x22 && c != 0x5c) {
          this.byte(c);
          continue;
        }
        this.byte(0x5c);
        if (c == 0x22) this.byte(0x22);
        else if (c == 0x5c) this.byte(0x5c);
        else if (c == 0x0a) this.byte(0x6e);
        else if (c == 0x0d) this.byte(0x72);
        else if (c == 0x09) this.byte(0x74);
        else if (c == 0x08) this.byte(0x62);
        else if (c == 0x0c) this.byte(0x66);
        else {
          this.ascii("u00");
          this.byte(HEX.charCodeAt(c >> 4));
          this.byte(HEX.charCodeAt(c & 15));
        }
        continue;
      }
      if (c < 0x800) {
        this.byte(0xc0 | (c >> 6));
        this.byte(0x80 | (c & 0x3f));
        continue;
      }
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          this.byte(0xf0 | (cp >> 18));
          this.byte(0x80 | ((cp >> 12) & 0x3f));
          this.byte(0x80 | ((cp >> 6) & 0x3f));
          this.byte(0x80 | (cp & 0x3f));
          continue;
        }
      }
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate: U+FFFD
      this.byte(0xe0 | (c >> 12));
      this.byte(0x80 | ((c >> 6) & 0x3f));
      this.byte(0x80 | (c & 0x3f));
    }
    this.byte(0x22);
  }

  // bytes returns the output written so far (a view from offset 0).
  bytes(): Uint8Array {
    return Uint8Array.wrap(this.buf.buffer, 0, this.len);
  }
}

function writeTo(v: JValue, w: Writer): void {
  switch (v.kind) {
    case NULL:
      w.ascii("null");
      break;
    case BOOL:
      w.ascii(v.bool ? "true" : "false");
      break;
    case NUMBER:
      w.ascii(v.text);
      break;
    case STRING:
      w.jsonString(v.text);
      break;
    case ARRAY:
      w.byte(0x5b);
      for (let i = 0; i < v.items.length; i++) {
        if (i > 0) w.byte(0x2c);
        writeTo(unchecked(v.items[i]), w);
      }
      w.byte(0x5d);
      break;
    default:
      w.byte(0x7b);
      for (let i = 0; i < v.keys.length; i++) {
        if (i > 0) w.byte(0x2c);
        w.jsonString(unchecked(v.keys[i]));
        w.byte(0x3a);
        writeTo(unchecked(v.items[i]), w);
      }
      w.byte(0x7d);
  }
}

// toJSON renders v as compact JSON in UTF-8.
export function toJSON(v: JValue): Uint8Array {
  const w = new Writer();
  writeTo(v, w);
  return w.bytes();
}
