// Package tomlcheck checks a TOML source before it is decoded, for what
// the decoder cannot survive.
package tomlcheck

import (
	"fmt"

	"github.com/flowhost/flowhost/pipeline"
)

// CheckNesting scans a TOML source before it is decoded, refusing arrays
// and inline tables nested more than pipeline.MaxDepth levels deep and keys
// (or table headers) of more than pipeline.MaxDepth dotted parts. The TOML
// decoder recurses once per level of nesting, so a 5,000,000-deep array
// overflows the Go stack, a crash no recover catches; and it keeps every
// prefix of a dotted key, so a key of a million parts takes gigabytes.
//
// The scan reads strings (basic, literal and multi-line) and comments as
// TOML does, so brackets inside them do not count; it stops at the first
// level too deep and returns an *Error there (File is left empty: the
// caller names the file). It never recurses and reads each byte once.
func CheckNesting(src []byte) error {
	s := nestScanner{src: src, line: 1}
	return s.run()
}

// Error is where a source nests too deep: its 1-based line and column.
// CheckNesting leaves File empty; the caller, which knows the file's name,
// sets it, so that the error reads "file:line:col: message".
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

type nestScanner struct {
	src       []byte
	i         int
	line      int
	lineStart int    // offset of the current line's first byte
	stack     []byte // the open '[' and '{' of values
}

func (s *nestScanner) errorf(at int, format string, args ...any) error {
	return &Error{Line: s.line, Col: at - s.lineStart + 1, Msg: fmt.Sprintf(format, args...)}
}

// newline records a line break at offset i.
func (s *nestScanner) newline(i int) {
	s.line++
	s.lineStart = i + 1
}

func (s *nestScanner) run() error {
	const (
		lineStart = iota // at the start of a line outside any value
		inKey            // reading a key, before its '='
		inValue          // reading a value
	)
	state := lineStart
	parts, keyAt := 1, 0 // the dotted parts of the key being read, and where it starts
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\n':
			s.newline(s.i)
			if len(s.stack) == 0 {
				state = lineStart
			}
			s.i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
			continue
		case c == '#':
			s.skipComment()
			continue
		}
		switch state {
		case lineStart:
			if c == '[' {
				if err := s.header(); err != nil {
					return err
				}
				state = inValue // what follows a header on its line is no key
				continue
			}
			state, parts, keyAt = inKey, 1, s.i
			continue
		case inKey:
			switch c {
			case '"', '\'':
				s.skipString()
				continue
			case '.':
				if parts++; parts > pipeline.MaxDepth {
					return s.keyError(keyAt)
				}
			case '=':
				state = inValue
			case '[', '{', '}', ']':
				state = inValue // not a key after all: read it as a value
				continue
			}
			s.i++
			continue
		}
		switch c { // inValue
		case '"', '\'':
			s.skipString()
			continue
		case '[', '{':
			s.stack = append(s.stack, c)
			if len(s.stack) > pipeline.MaxDepth {
				return s.errorf(s.i, "arrays and inline tables nested more than %d deep: at most %d levels are allowed", pipeline.MaxDepth, pipeline.MaxDepth)
			}
			if c == '{' {
				state, parts, keyAt = inKey, 1, s.i+1
			}
		case ']', '}':
			if len(s.stack) > 0 {
				s.stack = s.stack[:len(s.stack)-1]
			}
		case ',':
			if len(s.stack) > 0 && s.stack[len(s.stack)-1] == '{' {
				state, parts, keyAt = inKey, 1, s.i+1
			}
		}
		s.i++
	}
	return nil
}

func (s *nestScanner) keyError(at int) error {
	return s.errorf(at, "a key or table name of more than %d dotted parts: at most %d are allowed", pipeline.MaxDepth, pipeline.MaxDepth)
}

// header reads a [table] or [[array]] header, counting its dotted parts.
func (s *nestScanner) header() error {
	at := s.i
	parts := 1
	s.i++
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case '\n':
			return nil // unterminated: the decoder says so
		case '"', '\'':
			s.skipString()
			continue
		case '.':
			if parts++; parts > pipeline.MaxDepth {
				return s.keyError(at)
			}
		case ']':
			s.i++
			if s.i < len(s.src) && s.src[s.i] == ']' {
				s.i++
			}
			return nil
		}
		s.i++
	}
	return nil
}

func (s *nestScanner) skipComment() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

// skipString reads a string starting at s.i: "basic", 'literal',
// """multi-line basic""" or ”'multi-line literal”'. A one-line string
// ends at the end of its line at the latest, where the decoder stops with
// an error.
func (s *nestScanner) skipString() {
	q := s.src[s.i]
	if s.i+2 < len(s.src) && s.src[s.i+1] == q && s.src[s.i+2] == q {
		s.i += 3
		for s.i < len(s.src) {
			c := s.src[s.i]
			switch {
			case c == '\\' && q == '"':
				if s.i+1 < len(s.src) && s.src[s.i+1] == '\n' {
					s.newline(s.i + 1)
				}
				s.i += 2
				continue
			case c == '\n':
				s.newline(s.i)
			case c == q && s.i+2 < len(s.src) && s.src[s.i+1] == q && s.src[s.i+2] == q:
				s.i += 3
				// Up to two more quotes belong to the string: """a"""" is `a"`.
				for n := 0; n < 2 && s.i < len(s.src) && s.src[s.i] == q; n++ {
					s.i++
				}
				return
			}
			s.i++
		}
		return
	}
	s.i++
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\n':
			return
		case c == '\\' && q == '"':
			if s.i+1 < len(s.src) && s.src[s.i+1] != '\n' {
				s.i++
			}
		case c == q:
			s.i++
			return
		}
		s.i++
	}
}
