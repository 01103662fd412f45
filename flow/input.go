package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/flowhost/flowhost/internal/safefile"
	"github.com/flowhost/flowhost/pipeline"
)

// MaxInputFile is the largest file --input NAME=@PATH reads.
const MaxInputFile = 64 << 20

// ParseInput reads one --input flag: NAME=VALUE or NAME=@PATH. The rule
// for VALUE, with no guessing:
//
//   - a value that begins (after white space) with '{', '[' or '"' is
//     JSON, and must be valid: 'x=[1,2' is refused, not taken as a string;
//   - a value that is a JSON number, true, false or null is that value;
//   - any other value is a string, exactly as written: text=hello.
//
// To give a string that begins with one of those characters, or one that
// reads as a number, quote it as JSON: 'text="[draft]"', 'zip="01234"'.
// NAME=@PATH reads JSON from a regular file of at most MaxInputFile bytes
// (quote "@…" to give a string beginning with '@'). Every value passes
// pipeline.CheckJSON. Errors name the flag and the input.
func ParseInput(kv string) (name string, v json.RawMessage, err error) {
	name, value, ok := strings.Cut(kv, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--input %q: write NAME=JSON, NAME=TEXT or NAME=@FILE", kv)
	}
	fail := func(err error) (string, json.RawMessage, error) {
		return "", nil, fmt.Errorf("--input %s: %w", name, err)
	}
	if path, isFile := strings.CutPrefix(value, "@"); isFile {
		b, err := readInputFile(path)
		if err != nil {
			return fail(err)
		}
		if err := pipeline.CheckJSON(b); err != nil {
			return fail(fmt.Errorf("%s: %w", path, err))
		}
		return name, json.RawMessage(b), nil
	}
	switch t := strings.TrimLeft(value, " \t\r\n"); {
	case t != "" && strings.ContainsRune(`{["`, rune(t[0])):
		if err := pipeline.CheckJSON([]byte(value)); err != nil {
			if !errors.Is(err, pipeline.ErrTooDeep) {
				err = fmt.Errorf("%w (a value beginning with %q is read as JSON; to give a string, quote it as JSON)", err, t[0])
			}
			return fail(err)
		}
		return name, json.RawMessage(value), nil
	case json.Valid([]byte(value)): // a number, true, false or null
		return name, json.RawMessage(value), nil
	}
	s, err := json.Marshal(value)
	if err != nil {
		return fail(err)
	}
	return name, s, nil
}

// readInputFile reads an --input file: a regular file (not a device or a
// pipe, which might never end) of at most MaxInputFile bytes.
func readInputFile(path string) ([]byte, error) {
	b, err := safefile.Read(path, MaxInputFile)
	var big *safefile.TooLargeError
	switch {
	case errors.As(err, &big):
		return nil, fmt.Errorf("%s is larger than %d MiB, the most --input reads", path, MaxInputFile>>20)
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, err // an *fs.PathError names the path
}
