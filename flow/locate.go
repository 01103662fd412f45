package flow

import (
	"strings"
)

// Position is a place in a flow file, 1-based.
type Position struct {
	Line, Col int
}

// locator finds where keys are written in a TOML source. The TOML decoder
// reports positions only for syntax errors; flowhost's own checks (an
// unknown key, a task that does not exist) must name file:line:col too.
type locator struct {
	lines []string
}

func newLocator(src string) *locator {
	return &locator{lines: strings.Split(src, "\n")}
}

// find returns the position of the key path (table components, then the
// key), in the n-th (0-based) table of that name when the first component
// is an array of tables such as [[step]]; n < 0 means any. It returns the
// zero Position when the key is not found.
func (l *locator) find(path []string, n int) Position {
	var table []string
	aot := -1     // index of the current [[path[0]]] table
	inMulti := "" // the closing delimiter of a multi-line string we are in
	depth := 0    // bracket depth of a multi-line array
	for i, line := range l.lines {
		if inMulti != "" {
			if j := strings.Index(line, inMulti); j >= 0 {
				inMulti = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDelta(line)
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		col := strings.Index(line, t) + 1
		if strings.HasPrefix(t, "[[") {
			end := strings.Index(t, "]]")
			if end < 0 {
				continue
			}
			table = splitKey(t[2:end])
			if len(table) > 0 && len(path) > 0 && table[0] == path[0] {
				aot++
			}
			if equalPath(table, path) && (n < 0 || aot == n) {
				return Position{i + 1, col}
			}
			continue
		}
		if t[0] == '[' {
			end := strings.Index(t, "]")
			if end < 0 {
				continue
			}
			table = splitKey(t[1:end])
			if equalPath(table, path) {
				return Position{i + 1, col}
			}
			continue
		}
		eq := keyEnd(t)
		if eq < 0 {
			continue
		}
		key := append(append([]string(nil), table...), splitKey(t[:eq])...)
		inTable := n < 0 || len(table) == 0 || len(path) == 0 || table[0] != path[0] || aot == n
		if inTable && equalPath(key, path) {
			return Position{i + 1, col}
		}
		value := strings.TrimSpace(t[eq+1:])
		if inTable && strings.HasPrefix(value, "{") && isPrefix(key, path) {
			if c := inlineKey(value, path[len(key):]); c >= 0 {
				return Position{i + 1, strings.Index(line, value) + c + 1}
			}
		}
		switch {
		case strings.HasPrefix(value, `"""`) && strings.Count(value, `"""`) == 1:
			inMulti = `"""`
		case strings.HasPrefix(value, `'''`) && strings.Count(value, `'''`) == 1:
			inMulti = `'''`
		case strings.HasPrefix(value, "["):
			depth = bracketDelta(value)
		}
	}
	return Position{}
}

// keyEnd returns the index of the '=' that ends the key of a key/value
// line, skipping quoted key parts, or -1.
func keyEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\'':
			j := strings.IndexByte(s[i+1:], s[i])
			if j < 0 {
				return -1
			}
			i += j + 1
		case '=':
			return i
		case '#', '[', '{':
			return -1
		}
	}
	return -1
}

// splitKey splits a dotted key, unquoting its parts.
func splitKey(s string) []string {
	var parts []string
	s = strings.TrimSpace(s)
	for s != "" {
		var part string
		if s[0] == '"' || s[0] == '\'' {
			j := strings.IndexByte(s[1:], s[0])
			if j < 0 {
				return append(parts, s)
			}
			part, s = s[1:j+1], s[j+2:]
		} else if j := strings.IndexByte(s, '.'); j >= 0 {
			part, s = s[:j], s[j:]
		} else {
			part, s = s, ""
		}
		parts = append(parts, strings.TrimSpace(part))
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, ".")
		s = strings.TrimSpace(s)
	}
	return parts
}

// inlineKey finds the key path rest inside an inline table and returns
// its offset in value, or -1.
func inlineKey(value string, rest []string) int {
	if len(rest) == 0 {
		return 0
	}
	depth := 0
	start := true
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(value[i+1:], c)
			if j < 0 {
				return -1
			}
			if start && depth == 1 {
				if eq := keyEnd(value[i:]); eq >= 0 && equalPath(splitKey(value[i:i+eq]), rest[:1]) {
					return i
				}
			}
			i += j + 1
			start = false
		case c == '{' || c == '[':
			depth++
			start = c == '{'
		case c == '}' || c == ']':
			depth--
		case c == ',':
			start = true
		case c == ' ' || c == '\t':
		default:
			if start && depth == 1 {
				if eq := keyEnd(value[i:]); eq >= 0 {
					key := splitKey(value[i : i+eq])
					if isPrefix(key, rest) {
						if len(key) == len(rest) {
							return i
						}
					}
				}
			}
			start = false
		}
	}
	return -1
}

func bracketDelta(s string) int {
	d := 0
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '#':
			return d
		case c == '[' || c == '{':
			d++
		case c == ']' || c == '}':
			d--
		}
	}
	return d
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isPrefix(prefix, path []string) bool {
	return len(prefix) <= len(path) && equalPath(prefix, path[:len(prefix)])
}
