package flow

import (
	"slices"
	"strings"
)

// Position is a place in a flow file, 1-based.
type Position struct {
	Line, Col int
}

// locator finds where keys are written in a TOML source. The TOML decoder
// reports positions only for syntax errors; flowhost's own checks (an
// unknown key, a task that does not exist) must name file:line:col too.
// It reads the source once, into an index, so that a lookup costs the same
// however long the file is: a flow of n steps looks up its steps' keys, and
// a scan of the file per lookup would cost n² lines.
type locator struct {
	lines []string
	// keys indexes every key and table header by its joined path.
	keys map[string]*locKey
}

// locKey is where one key path is written.
type locKey struct {
	// first is its first place, for a lookup in any table.
	first Position
	// free is its first place outside every array of tables, or as a
	// [table] header: a place that belongs to every table of the array.
	free Position
	// inAot is its first place in each entry of an array of tables, by
	// the entry's index (0-based).
	inAot map[int]Position
	// inline lists the places where the key's value is an inline table,
	// in the order of the file, for a lookup of a longer path.
	inline []inlineValue
}

// inlineValue is a key whose value is an inline table.
type inlineValue struct {
	pos Position
	aot int // the array-of-tables entry it belongs to, or -1
	// value is the inline table's text and col its 0-based column.
	value string
	col   int
}

func joinPath(path []string) string { return strings.Join(path, "\x00") }

func newLocator(src string) *locator {
	l := &locator{lines: strings.Split(src, "\n"), keys: map[string]*locKey{}}
	var table []string
	aots := map[string]int{} // [[name…]] headers seen, by first component
	aot := -1                // the array-of-tables entry the current table belongs to, or -1
	inMulti := ""            // the closing delimiter of a multi-line string we are in
	depth := 0               // bracket depth of a multi-line array
	for i, line := range l.lines {
		if inMulti != "" {
			if strings.Contains(line, inMulti) {
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
		pos := Position{i + 1, strings.Index(line, t) + 1}
		if strings.HasPrefix(t, "[[") {
			end := strings.Index(t, "]]")
			if end < 0 {
				continue
			}
			table = splitKey(t[2:end])
			aot = -1
			if len(table) > 0 {
				aot = aots[table[0]]
				aots[table[0]]++
			}
			l.key(table).add(pos, aot)
			continue
		}
		if t[0] == '[' {
			end := strings.Index(t, "]")
			if end < 0 {
				continue
			}
			table = splitKey(t[1:end])
			aot = -1
			if len(table) > 0 {
				if n, ok := aots[table[0]]; ok {
					aot = n - 1
				}
			}
			l.key(table).add(pos, -1) // a [table] header matches in any entry
			continue
		}
		eq := keyEnd(t)
		if eq < 0 {
			continue
		}
		key := append(append([]string(nil), table...), splitKey(t[:eq])...)
		k := l.key(key)
		k.add(pos, aot)
		value := strings.TrimSpace(t[eq+1:])
		switch {
		case strings.HasPrefix(value, "{"):
			k.inline = append(k.inline, inlineValue{pos: pos, aot: aot, value: value, col: strings.Index(line, value)})
		case strings.HasPrefix(value, `"""`) && strings.Count(value, `"""`) == 1:
			inMulti = `"""`
		case strings.HasPrefix(value, `'''`) && strings.Count(value, `'''`) == 1:
			inMulti = `'''`
		case strings.HasPrefix(value, "["):
			depth = bracketDelta(value)
		}
	}
	return l
}

// key returns the index entry of path, making it when new.
func (l *locator) key(path []string) *locKey {
	j := joinPath(path)
	k := l.keys[j]
	if k == nil {
		k = &locKey{}
		l.keys[j] = k
	}
	return k
}

// add records a place of the key, in the array-of-tables entry aot (-1:
// in none, or in every one).
func (k *locKey) add(pos Position, aot int) {
	if k.first.Line == 0 {
		k.first = pos
	}
	if aot < 0 {
		if k.free.Line == 0 {
			k.free = pos
		}
		return
	}
	if k.inAot == nil {
		k.inAot = map[int]Position{}
	}
	if _, ok := k.inAot[aot]; !ok {
		k.inAot[aot] = pos
	}
}

// find returns the position of the key path (table components, then the
// key), in the n-th (0-based) table of that name when the first component
// is an array of tables such as [[step]]; n < 0 means any. It returns the
// zero Position when the key is not found.
func (l *locator) find(path []string, n int) Position {
	var best Position
	better := func(p Position) {
		if p.Line > 0 && (best.Line == 0 || p.Line < best.Line) {
			best = p
		}
	}
	if k := l.keys[joinPath(path)]; k != nil {
		if n < 0 {
			better(k.first)
		} else {
			better(k.free)
			better(k.inAot[n])
		}
	}
	// A longer path may be written inside an inline table.
	for i := 1; i < len(path); i++ {
		k := l.keys[joinPath(path[:i])]
		if k == nil {
			continue
		}
		for _, v := range k.inline {
			if best.Line > 0 && v.pos.Line >= best.Line {
				break
			}
			if n >= 0 && v.aot >= 0 && v.aot != n {
				continue
			}
			if c := inlineKey(v.value, path[i:]); c >= 0 {
				better(Position{v.pos.Line, v.col + c + 1})
				break
			}
		}
	}
	return best
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
				if eq := keyEnd(value[i:]); eq >= 0 && slices.Equal(splitKey(value[i:i+eq]), rest[:1]) {
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

func isPrefix(prefix, path []string) bool {
	return len(prefix) <= len(path) && slices.Equal(prefix, path[:len(prefix)])
}
