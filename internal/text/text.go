// Package text holds the helpers that read and write the words of
// flowhost's configuration: "did you mean" suggestions for a misspelt
// name, byte sizes such as "64MiB" and durations such as "1m30s". Flow
// files, worker configs and the command line share them, so that one
// value reads the same everywhere.
package text

import (
	"fmt"
	"strings"
)

// Suggest returns `; did you mean "x"?` for the valid word nearest to
// word, when one is near enough to be a likely typo, else "".
func Suggest(word string, valid []string) string {
	best, bestD := "", len(word)/2+2
	for _, v := range valid {
		if d := levenshtein(word, v); d < bestD {
			best, bestD = v, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// OrNone is names joined by ", ", or "none".
func OrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
