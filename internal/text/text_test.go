package text

import "testing"

func TestSuggest(t *testing.T) {
	valid := []string{"sequential", "dataflow", "path", "sha256"}
	for _, c := range []struct{ word, want string }{
		{"sequentail", `; did you mean "sequential"?`},
		{"dataflw", `; did you mean "dataflow"?`},
		{"pth", `; did you mean "path"?`},
		{"sha265", `; did you mean "sha256"?`},
		{"timeout", ""}, // too far from every word
		{"", ""},
	} {
		if got := Suggest(c.word, valid); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
	if got := Suggest("x", nil); got != "" {
		t.Errorf("Suggest with no words = %q", got)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0}} {
		if got := levenshtein(c.a, c.b); got != c.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
