// Command textkit is a flowhost task library of text-processing tasks,
// written in standard Go against the Extism Go PDK.
//
// Build (see build.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath \
//	    -buildvcs=false -ldflags=-buildid= -o textkit.wasm .
//
// Every task is an exported function () -> int32 (//go:wasmexport). It
// reads its input, a JSON object with one member per declared input, and
// writes one JSON value (one output) or a JSON object with one member per
// output. It returns 0 on success; on failure it sets an error message
// with pdk.SetErrorString and returns 1.
package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/extism/go-pdk"
)

// main is required by package main; a c-shared (reactor) module never runs it.
func main() {}

// ---------------------------------------------------------------------------
// Helpers shared by the tasks.

// inputs decodes the task's input object. A missing input is absent from
// the map, so a task can apply its own default too.
type inputs map[string]json.RawMessage

// readInputs reads and decodes the input object of task.
func readInputs(task string) (inputs, error) {
	raw := pdk.Input()
	var in inputs
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return nil, fmt.Errorf("%s: the input must be a JSON object with one member per input", task)
	}
	return in, nil
}

// get decodes input name into v. A missing input keeps v (its default)
// unless required; a value of the wrong JSON type is an error that says
// what was expected.
func (in inputs) get(task, name string, required bool, want string, v any) error {
	raw, ok := in[name]
	if !ok {
		if required {
			return fmt.Errorf("%s: missing input '%s' (%s)", task, name, want)
		}
		return nil
	}
	// json.Unmarshal quietly accepts null for any type: refuse it here.
	if err := json.Unmarshal(raw, v); err != nil || string(raw) == "null" {
		return fmt.Errorf("%s: input '%s' must be %s, got %s", task, name, want, preview(raw))
	}
	return nil
}

// preview shortens a JSON value for an error message.
func preview(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if utf8.RuneCountInString(s) > 40 {
		r := []rune(s)
		s = string(r[:40]) + "…"
	}
	return s
}

// fail reports err as the task's error and returns the failure code.
func fail(err error) int32 {
	pdk.SetErrorString(err.Error())
	return 1
}

// output writes v as the task's JSON output.
func output(v any) int32 {
	if err := pdk.OutputJSON(v); err != nil {
		return fail(err)
	}
	return 0
}

// ---------------------------------------------------------------------------
// Tasks.

// split: {text, sep=" "} -> words. The default separator " " splits on any
// run of white space; any other separator splits on that exact string.
// Empty pieces are dropped.
//
//go:wasmexport split
func split() int32 {
	in, err := readInputs("split")
	if err != nil {
		return fail(err)
	}
	var text string
	sep := " "
	if err := in.get("split", "text", true, "a string", &text); err != nil {
		return fail(err)
	}
	if err := in.get("split", "sep", false, "a string", &sep); err != nil {
		return fail(err)
	}
	if sep == "" {
		return fail(fmt.Errorf("split: input 'sep' must be a non-empty string"))
	}
	var parts []string
	if sep == " " {
		parts = strings.Fields(text)
	} else {
		parts = strings.Split(text, sep)
	}
	words := make([]string, 0, len(parts))
	for _, p := range parts {
		if p != "" {
			words = append(words, p)
		}
	}
	return output(words)
}

// profile: {words} -> {vocab, total}: the number of distinct words and the
// number of words.
//
//go:wasmexport profile
func profile() int32 {
	in, err := readInputs("profile")
	if err != nil {
		return fail(err)
	}
	var words []string
	if err := in.get("profile", "words", true, "an array of strings", &words); err != nil {
		return fail(err)
	}
	distinct := make(map[string]struct{}, len(words))
	for _, w := range words {
		distinct[w] = struct{}{}
	}
	return output(struct {
		Vocab int `json:"vocab"`
		Total int `json:"total"`
	}{len(distinct), len(words)})
}

// upper: {text} -> upper: the text in upper case (Unicode rules).
//
//go:wasmexport upper
func upper() int32 {
	in, err := readInputs("upper")
	if err != nil {
		return fail(err)
	}
	var text string
	if err := in.get("upper", "text", true, "a string", &text); err != nil {
		return fail(err)
	}
	return output(strings.ToUpper(text))
}

// wordcount: {text} -> word_count: the number of white-space separated words.
//
//go:wasmexport wordcount
func wordcount() int32 {
	in, err := readInputs("wordcount")
	if err != nil {
		return fail(err)
	}
	var text string
	if err := in.get("wordcount", "text", true, "a string", &text); err != nil {
		return fail(err)
	}
	return output(len(strings.Fields(text)))
}

// ratio: {vocab, total} -> ratio = vocab / total (0 when total is 0).
//
//go:wasmexport ratio
func ratio() int32 {
	in, err := readInputs("ratio")
	if err != nil {
		return fail(err)
	}
	var vocab, total float64
	if err := in.get("ratio", "vocab", true, "a number", &vocab); err != nil {
		return fail(err)
	}
	if err := in.get("ratio", "total", true, "a number", &total); err != nil {
		return fail(err)
	}
	if total < 0 || vocab < 0 {
		return fail(fmt.Errorf("ratio: inputs 'vocab' and 'total' must not be negative"))
	}
	if total == 0 {
		return output(0)
	}
	return output(vocab / total)
}

// slugify: {text} -> slug: lower-case letters and digits, every other run
// of characters replaced by one '-', no '-' at either end.
//
//go:wasmexport report
func report() int32 {
	in, err := readInputs("report")
	if err != nil {
		return fail(err)
	}
	var title string
	var words, ratio float64
	if err := in.get("report", "title", false, "a string", &title); err != nil {
		return fail(err)
	}
	if err := in.get("report", "word_count", true, "a number", &words); err != nil {
		return fail(err)
	}
	if err := in.get("report", "ratio", true, "a number", &ratio); err != nil {
		return fail(err)
	}
	if title == "" {
		title = "report"
	}
	return output(fmt.Sprintf("%s: %g words, %.0f%% distinct", title, words, ratio*100))
}

//go:wasmexport slugify
func slugify() int32 {
	in, err := readInputs("slugify")
	if err != nil {
		return fail(err)
	}
	var text string
	if err := in.get("slugify", "text", true, "a string", &text); err != nil {
		return fail(err)
	}
	var b strings.Builder
	dash := false
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		dash = true
	}
	return output(b.String())
}

// is_long: {word, min_len=5} -> long: whether word has at least min_len
// characters (Unicode code points). Made for `filter` steps.
//
//go:wasmexport is_long
func isLong() int32 {
	in, err := readInputs("is_long")
	if err != nil {
		return fail(err)
	}
	var word string
	minLen := 5.0
	if err := in.get("is_long", "word", true, "a string", &word); err != nil {
		return fail(err)
	}
	if err := in.get("is_long", "min_len", false, "a number", &minLen); err != nil {
		return fail(err)
	}
	return output(float64(utf8.RuneCountInString(word)) >= minLen)
}

// fail_if: {flag, message="fail_if: flag is true"} -> checked. Fails with
// message when flag is JSON true; otherwise returns flag unchanged. Made
// for tests of retries, skip_errors and error reporting.
//
//go:wasmexport fail_if
func failIf() int32 {
	in, err := readInputs("fail_if")
	if err != nil {
		return fail(err)
	}
	flag, ok := in["flag"]
	if !ok {
		return fail(fmt.Errorf("fail_if: missing input 'flag'"))
	}
	message := "fail_if: flag is true"
	if err := in.get("fail_if", "message", false, "a string", &message); err != nil {
		return fail(err)
	}
	if strings.TrimSpace(string(flag)) == "true" {
		pdk.SetErrorString(message)
		return 1
	}
	pdk.Output(flag)
	return 0
}
